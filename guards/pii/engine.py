"""Build Presidio's AnalyzerEngine offline: no model download, ever; only the requested recognizers.

Why this module exists (see docs: platform notes §6):

* ``AnalyzerEngine()`` with defaults tries to download ``en_core_web_lg``. We build the NLP engine
  ourselves: Presidio's ``no_op`` engine (pattern recognizers only, 0.04 s) unless a spaCy model is
  named, and then a spaCy engine whose download hook raises instead of calling ``spacy.cli.download``.
* tldextract (used by the e-mail recognizer) fetches the public suffix list on first use; the
  environment variables below are set *before* Presidio is imported so it uses its bundled snapshot.
* Presidio logs a warning per recognizer whose language is not loaded; those are silenced.
* Presidio is imported lazily, inside these functions, so importing ``guards.pii`` costs nothing;
  ``import_presidio`` skips the import-time *validation* compile of its predefined recognizers'
  patterns (173 regexes in 2.2.366, ~0.16 s of CPU on the launch's critical path; each one a
  recognizer uses is compiled again, for real and with its flags, the first time it is used),
  and, for a model-less analyzer, without spaCy at all (``spacy_standin``: 0.6-0.75 s; stand-ins
  that turn into the real spaCy when used), else spaCy without its command line (``lazy_spacy_cli``).
  The first scan's other one-off costs (a pattern's compile, the phone library's metadata,
  tldextract's suffix list) are left to the first scan that needs them: paying them up front, on
  the launch's critical path, cost a mission whose pages hold no PII more than it saved.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from guards.pii.errors import PiiEngineUnavailable, PiiEntityUnsupported

LANGUAGE = "en"

# What an NER model adds (Presidio's default spaCy mapping); used for messages and supported_entities.
NER_ENTITIES: tuple[str, ...] = ("PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME")
# spaCy labels we never map (they only produce "Entity X is not mapped" noise).
_NER_LABELS_TO_IGNORE = ["CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT",
                         "PRODUCT", "QUANTITY", "WORK_OF_ART", "FAC"]
SUGGESTED_MODEL = "en_core_web_sm"
_INSTALL_HINT = (
    "install it first, e.g. `pip install en_core_web_sm-3.8.0-py3-none-any.whl` (the official wheel from "
    "github.com/explosion/spacy-models, vendored) or `pip install <name>` from your package index; "
    "or set pii.nlp_model to a model directory. Warden never downloads models"
)


def prepare_environment() -> None:
    """Set process-wide knobs that must precede Presidio's import (idempotent, never overrides)."""
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # bundled snapshot, no network
    if "TLDEXTRACT_CACHE" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(tempfile.gettempdir(), f"warden-{os.getuid()}")
        os.environ["TLDEXTRACT_CACHE"] = os.path.join(base, "warden", "tldextract")
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)


_import_lock = threading.Lock()


def import_presidio(spacy: bool = True) -> None:
    """Import ``presidio_analyzer`` (once, thread-safe) without the validation compile of its
    built-in patterns: ``Pattern.__init__`` compiles every regex only to check it and throws the
    result away (use compiles it again, with the recognizer's flags: another cache entry). They
    are Presidio's own, pinned patterns; a broken one would still fail (closed) when it is compiled
    for use. Patterns built after the import (a mission's own) are validated as usual.

    ``spacy=False`` (a model-less analyzer): spaCy is left out, its names stand-ins until something
    uses one (``spacy_standin``: then the real spaCy, for good); ``True`` makes sure the real one is in."""
    prepare_environment()
    with _import_lock:
        if "presidio_analyzer" in sys.modules:
            if spacy:
                from guards.pii.spacy_standin import restore

                restore()
            return
        import importlib

        regex: Any = importlib.import_module("regex")  # Presidio's regex engine (untyped)
        real = regex.compile

        def compile_(pattern: Any, flags: int = 0, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_code
            if (isinstance(pattern, str) and not flags and not args and not kwargs
                    and caller.co_name == "__validate_regex" and caller.co_filename.endswith("pattern.py")):
                return None
            return real(pattern, flags, *args, **kwargs)

        regex.compile = compile_
        try:
            from guards.pii.lazy_spacy_cli import import_without_cli

            if spacy:
                import_without_cli("presidio_analyzer")  # spaCy without its command line (typer, weasel...)
            else:
                from guards.pii.spacy_standin import import_with_standins

                import_with_standins("presidio_analyzer", import_without_cli)
        finally:
            regex.compile = real


def model_installed(nlp_model: str) -> bool:
    """True if ``nlp_model`` is an installed spaCy package or an existing model directory."""
    if Path(nlp_model).exists():
        return True
    import importlib.util

    try:
        return importlib.util.find_spec(nlp_model) is not None
    except (ImportError, ValueError):
        return False


def _require_model(nlp_model: str) -> None:
    if not model_installed(nlp_model):
        raise PiiEngineUnavailable(f"pii.nlp_model {nlp_model!r} is not installed: {_INSTALL_HINT}.")


def _nlp_engine(nlp_model: str | None) -> Any:
    import_presidio(spacy=nlp_model is not None)
    if nlp_model is None:
        from guards.pii.spacy_standin import standins_in_use

        if standins_in_use():
            from guards.pii.noop_engine import spacy_free_noop_engine

            return spacy_free_noop_engine(LANGUAGE)
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        noop: Any = NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "no_op"}])
        noop.load()
        return noop
    _require_model(nlp_model)
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    class _NoDownloadSpacyNlpEngine(SpacyNlpEngine):
        """Presidio's spaCy engine with its download hook replaced by a refusal."""

        @staticmethod
        def _download_spacy_model_if_needed(model_name: str) -> None:
            if not model_installed(model_name):
                raise PiiEngineUnavailable(f"pii.nlp_model {model_name!r} is not installed: {_INSTALL_HINT}.")

    engine: Any = _NoDownloadSpacyNlpEngine(
        models=[{"lang_code": LANGUAGE, "model_name": nlp_model}],
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=_NER_LABELS_TO_IGNORE),
    )
    try:
        engine.load()
    except PiiEngineUnavailable:
        raise
    except Exception as e:  # a broken model directory, incompatible spaCy version...
        raise PiiEngineUnavailable(f"pii.nlp_model {nlp_model!r} could not be loaded: {type(e).__name__}: {e}") from e
    return engine


def _default_configuration() -> dict[str, Any]:
    """Presidio's ``conf/default_recognizers.yaml``, parsed by libyaml's parser when PyYAML has it
    (the same constructors and resolvers as ``yaml.safe_load``, so the same data: tested; the pure
    Python parser took ~0.1 s of the build, on the launch's critical path)."""
    import yaml
    from presidio_analyzer.recognizer_registry.recognizers_loader_utils import RecognizerConfigurationLoader

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(RecognizerConfigurationLoader._get_full_conf_path()) as file:
        data = yaml.load(file, Loader=loader)  # noqa: S506 - a safe loader (libyaml's parser, SafeLoader's constructor)
    if not isinstance(data, dict):
        raise PiiEngineUnavailable("Presidio's default recognizer configuration is not a mapping")
    return data


def _full_registry(nlp_engine: Any) -> Any:
    """``RecognizerRegistry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=...)`` of
    Presidio 2.2.366, with its default configuration read by ``_default_configuration``: the
    registry's own settings, completed by the file's keys (what its loader merges), then the list
    loader and the NLP recognizer, as there (a test compares the two registries)."""
    from presidio_analyzer import RecognizerRegistry
    from presidio_analyzer.recognizer_registry.recognizers_loader_utils import (
        RecognizerConfigurationLoader,
        RecognizerListLoader,
    )

    registry: Any = RecognizerRegistry(supported_languages=[LANGUAGE])
    own = {"global_regex_flags": registry.global_regex_flags, "supported_languages": [LANGUAGE]}
    configuration = RecognizerConfigurationLoader.get(registry_configuration={**_default_configuration(), **own})
    registry.recognizers.extend(RecognizerListLoader.get(**configuration))
    registry.add_nlp_recognizer(nlp_engine=nlp_engine)
    return registry


@lru_cache(maxsize=1)
def _pattern_entities() -> tuple[str, ...]:
    """Entities Presidio's predefined recognizers detect with no NLP model (built once, 0.04 s)."""
    registry = _full_registry(_nlp_engine(None))
    found = {e for r in registry.recognizers for e in r.supported_entities}
    return tuple(sorted(found))


def supported_entities(nlp_model: str | None = None) -> list[str]:
    """What the engine configured with ``nlp_model`` can detect (a model adds NER_ENTITIES)."""
    entities = set(_pattern_entities())
    if nlp_model is not None:
        _require_model(nlp_model)
        entities.update(NER_ENTITIES)
    return sorted(entities)


def check_entities(entities: Sequence[str] | None, nlp_model: str | None) -> list[str]:
    """Validate the requested entities against the engine; return the effective list (None = all).

    Read off ``PATTERN_ENTITIES`` (a test keeps it equal to what Presidio's registry lists): no
    second full registry is built on the way to the analyzer."""
    if nlp_model is not None:
        _require_model(nlp_model)
    available = sorted({*PATTERN_ENTITIES, *(NER_ENTITIES if nlp_model is not None else ())})
    if entities is None:
        return available
    wanted = list(dict.fromkeys(entities))
    needs_model = [e for e in wanted if e in NER_ENTITIES and e not in available]
    if needs_model:
        raise PiiEntityUnsupported(
            f"{', '.join(needs_model)} need(s) an NER model: set pii.nlp_model to an installed spaCy model "
            f"(e.g. {SUGGESTED_MODEL!r}; {_INSTALL_HINT}). A model adds {', '.join(NER_ENTITIES)} "
            f"(NER-based), at roughly 7x the scan cost. Without one Warden detects: {', '.join(available)}."
        )
    unknown = [e for e in wanted if e not in available]
    if unknown:
        raise PiiEntityUnsupported(
            f"unknown PII entity {', '.join(unknown)}; the configured engine detects: {', '.join(available)}."
        )
    return wanted


# What Presidio 2.2.366's predefined recognizers detect with no NLP model (a test keeps this equal
# to ``supported_entities(None)``): lets ``warden check`` validate ``pii.entities`` without importing
# Presidio.
PATTERN_ENTITIES: tuple[str, ...] = (
    "CREDIT_CARD", "CRYPTO", "DATE_TIME", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS", "MAC_ADDRESS",
    "MEDICAL_LICENSE", "PHONE_NUMBER", "UK_NHS", "URL", "US_BANK_NUMBER", "US_DRIVER_LICENSE", "US_ITIN",
    "US_PASSPORT", "US_SSN", "UUID",
)
# Detectable, but technical rather than personal: every link, date and request id would be a
# finding (and, with ``on_request: block``, most API calls would be refused). Not in the default
# entity set nor in evidence redaction; a mission may still name them in ``pii.entities``.
TECHNICAL_ENTITIES: frozenset[str] = frozenset({"URL", "DATE_TIME", "UUID"})


def default_entities(nlp_model: str | None = None) -> list[str]:
    """``pii.entities`` when the mission gives none: every *personal* entity the engine detects
    (the pattern ones without TECHNICAL_ENTITIES; with a model also PERSON, LOCATION, ORGANIZATION, NRP)."""
    ents = set(PATTERN_ENTITIES) - TECHNICAL_ENTITIES
    if nlp_model is not None:
        ents.update(e for e in NER_ENTITIES if e not in TECHNICAL_ENTITIES)
    return sorted(ents)


def policy_problems(
    entities: Sequence[str] | None, allow: Sequence[str], nlp_model: str | None
) -> list[tuple[str, str]]:
    """Static check of a ``pii`` block, without importing Presidio: [(key path, message)].

    An entity that needs an NER model, named while no ``nlp_model`` is configured, is a problem
    (the mission asked for a detection Warden cannot do: fail closed, exit 2) — in ``entities``.
    In ``allow`` it is harmless (nothing is detected, so nothing is gated) and accepted.
    """
    out: list[tuple[str, str]] = []
    if nlp_model is not None and not model_installed(nlp_model):
        out.append(("pii.nlp_model", f"pii.nlp_model {nlp_model!r} is not installed: {_INSTALL_HINT}."))
        return out
    known = set(PATTERN_ENTITIES) | set(NER_ENTITIES)
    for e in entities or ():
        if e in NER_ENTITIES and nlp_model is None:
            out.append(("pii.entities", (
                f"{e} needs an NER model: set pii.nlp_model to an installed spaCy model (e.g. {SUGGESTED_MODEL!r}; "
                f"{_INSTALL_HINT}), or remove {e} from pii.entities. Without a model Warden detects: "
                f"{', '.join(PATTERN_ENTITIES)}.")))
        elif e not in known:
            out.append(("pii.entities", f"unknown PII entity {e}; known: {', '.join(sorted(known))}."))
    for e in allow:
        if e not in known:
            out.append(("pii.allow", f"unknown PII entity {e} in pii.allow; known: {', '.join(sorted(known))}."))
    return out


def _card_2_series() -> Any:
    """Presidio 2.2.366's card regex misses Mastercard's 2221-2720 range (issued since 2017); same
    recognizer class (Luhn-validated), one more pattern."""
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    rx = r"\b2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b"
    return CreditCardRecognizer(
        patterns=[Pattern("Mastercard 2-series (weak)", rx, 0.3)], name="WardenMastercard2SeriesRecognizer"
    )


def _fast(recognizer: Any) -> Any:
    """Presidio's phone recognizer becomes the one that skips unparsable candidates (same results:
    guards/pii/phone_walk.py); every other recognizer is kept as it is."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    if type(recognizer) is PhoneRecognizer:
        from guards.pii.phone_walk import fast_phone_recognizer

        return fast_phone_recognizer(recognizer)
    return recognizer


def build_analyzer(entities: Sequence[str] | None = None, nlp_model: str | None = None) -> Any:
    """An AnalyzerEngine holding only the recognizers of ``entities`` (None = every supported one).

    Raises PiiEngineUnavailable (model missing / unloadable) or PiiEntityUnsupported (e.g. PERSON
    without a model). Never downloads anything.
    """
    wanted = set(check_entities(entities, nlp_model))
    nlp_engine = _nlp_engine(nlp_model)
    registry = _full_registry(nlp_engine)
    if nlp_model is not None:
        registry.add_nlp_recognizer(nlp_engine=nlp_engine)
    if "CREDIT_CARD" in wanted:
        registry.add_recognizer(_card_2_series())
    registry.recognizers = [_fast(r) for r in registry.recognizers if wanted & set(r.supported_entities)]
    from presidio_analyzer import AnalyzerEngine

    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])


def recognize_direct(analyzer: Any, recognizers: Sequence[Any], text: str, ents: tuple[str, ...]) -> list[Any]:
    """What ``AnalyzerEngine.analyze(score_threshold=0.0)`` returns with the model-less engine, minus
    its overhead: the same recognizers on the same (empty) NLP artifacts, the same duplicate removal.
    Skipped: its context enhancement, which deep-copies every result and, with no tokens to read,
    changes no score (the scanner's ``_finish`` does the context boost), and the per-call lookup of
    the recognizers (the caller keeps them per entity set)."""
    from presidio_analyzer import EntityRecognizer

    artifacts = analyzer.nlp_engine.process_text(text, LANGUAGE)
    results: list[Any] = []
    for rec in recognizers:
        if not rec.is_loaded:
            rec.load()
            rec.is_loaded = True
        found = rec.analyze(text=text, entities=list(ents), nlp_artifacts=artifacts)
        for r in found or ():
            if not r.recognition_metadata:
                r.recognition_metadata = {}
            r.recognition_metadata.setdefault("recognizer_identifier", rec.id)
            results.append(r)
    return list(EntityRecognizer.remove_duplicates(results))
