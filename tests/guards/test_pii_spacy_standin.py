"""Presidio imported with spaCy stand-ins (guards/pii/spacy_standin.py): a model-less analyzer is
built and scans without spaCy ever being imported, finds exactly what the ordinary import finds,
and spaCy comes back whole (its registrations, Presidio's classes built on it) when used."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.guards.canaries import CANARIES, paragraph

ROOT = Path(__file__).resolve().parents[2]

_SCAN = """
import json, sys
from guards.pii.engine import build_analyzer, default_entities, import_presidio
if sys.argv[1] == "ordinary":
    import_presidio(spacy=True)
texts = json.loads(sys.argv[2])
analyzer = build_analyzer(default_entities())
found = [sorted((r.entity_type, r.start, r.end, round(r.score, 6)) for r in
                analyzer.analyze(t, language="en", score_threshold=0.0)) for t in texts]
mods = [m for m in ("spacy", "thinc", "numpy") if m in sys.modules]
print(json.dumps({"found": found, "mods": mods, "engine": type(analyzer.nlp_engine).__name__}))
"""


def _python(script: str, *args: str) -> Any:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_model_less_analyzer_never_imports_spacy_and_finds_what_the_ordinary_import_finds() -> None:
    texts = [paragraph(), *(c.value for c in CANARIES), "mail alice@example.com, call +1 212-555-0123"]
    stood_in = _python(_SCAN, "standin", json.dumps(texts))
    ordinary = _python(_SCAN, "ordinary", json.dumps(texts))
    assert stood_in["mods"] == [] and "spacy" in ordinary["mods"]
    assert stood_in["engine"] == ordinary["engine"] == "NoOpNlpEngine"  # the scanner's direct path
    assert stood_in["found"] == ordinary["found"]
    assert any(stood_in["found"])


def test_spacy_comes_back_whole_when_used(tmp_path: Path) -> None:
    got = _python(
        """
        import json, sys
        from guards.pii.engine import build_analyzer, default_entities
        from guards.pii import spacy_standin
        build_analyzer(default_entities())
        assert spacy_standin.standins_in_use() and "spacy" not in sys.modules
        from presidio_analyzer.nlp_engine import NoOpNlpEngine   # raw Presidio: its Vocab() is the real one
        raw = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
        import spacy, spacy.pipeline, spacy.util
        from spacy.language import Language
        import presidio_analyzer.nlp_engine.huggingface_token_pipe as hf
        import presidio_analyzer.nlp_engine.transformers_nlp_engine as tf
        import presidio_analyzer.nlp_engine.nlp_artifacts as na
        from spacy.tokens import Doc
        spacy.blank("en").to_disk(sys.argv[1])
        model = build_analyzer(["EMAIL_ADDRESS"], nlp_model=sys.argv[1])
        print(json.dumps([
            type(raw._vocab).__module__, spacy_standin.standins_in_use(), na.Doc is Doc,
            issubclass(hf.HuggingFaceTokenPipe, spacy.pipeline.Pipe), tf.is_available is hf.is_available,
            spacy.util.registry.tokenizers.get("PipelineAsTokenizer.v1").__module__,
            Language.get_factory_meta("presidio_hf_token_pipe").factory,
            [r.entity_type for r in model.analyze("mail alice@example.com", language="en")],
        ]))
        """,
        str(tmp_path / "blank-en"),
    )
    assert got == ["spacy.vocab", False, True, True, True, "presidio_analyzer.nlp_engine.stanza_nlp_engine",
                   "presidio_hf_token_pipe", ["EMAIL_ADDRESS"]]


def test_with_spacy_already_imported_presidio_is_imported_the_ordinary_way() -> None:
    got = _python(
        """
        import json, sys
        import spacy
        from guards.pii.engine import build_analyzer, default_entities
        from guards.pii import spacy_standin
        a = build_analyzer(default_entities())
        print(json.dumps([spacy_standin.standins_in_use(), type(a.nlp_engine).__module__]))
        """
    )
    assert got == [False, "presidio_analyzer.nlp_engine.no_op_nlp_engine"]


_PII = st.sampled_from([c.value for c in CANARIES] + ["alice@example.com", "212-555-0123", "4111 1111 1111 1111"])
_TEXT = st.lists(st.one_of(st.text(max_size=20), _PII, st.sampled_from(["call", "card", "ssn", "email", " "])),
                 max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(_TEXT)
def test_the_spacy_free_engine_gives_presidio_s_answers(text: str) -> None:
    """Same registry, Presidio's no-op engine vs the spaCy-free one: the same results, context
    enhancement (AnalyzerEngine.analyze) included."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    from guards.pii import engine
    from guards.pii.noop_engine import spacy_free_noop_engine

    theirs_nlp = NoOpNlpEngine(models=[{"lang_code": engine.LANGUAGE, "model_name": "no_op"}])
    theirs_nlp.load()
    ours_nlp = spacy_free_noop_engine(engine.LANGUAGE)
    registry = engine._full_registry(theirs_nlp)
    theirs = AnalyzerEngine(registry=registry, nlp_engine=theirs_nlp, supported_languages=[engine.LANGUAGE])
    ours = AnalyzerEngine(registry=registry, nlp_engine=ours_nlp, supported_languages=[engine.LANGUAGE])
    for context in (None, ["card", "phone"]):
        a = theirs.analyze(text, language=engine.LANGUAGE, context=context)
        b = ours.analyze(text, language=engine.LANGUAGE, context=context)
        assert [(r.entity_type, r.start, r.end, r.score) for r in a] == [(r.entity_type, r.start, r.end, r.score)
                                                                         for r in b]
    artifacts = ours_nlp.process_text(text, engine.LANGUAGE)
    reference = theirs_nlp.process_text(text, engine.LANGUAGE)
    assert (len(artifacts.tokens), artifacts.keywords, artifacts.lemmas, artifacts.entities) == (
        len(reference.tokens), reference.keywords, reference.lemmas, reference.entities)
    assert artifacts.to_json() == reference.to_json()
