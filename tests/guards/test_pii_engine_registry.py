"""The registry ``build_analyzer`` starts from is Presidio's own ``load_predefined_recognizers``:
the same recognizers, in the same order, with the same patterns, scores, context and settings."""

from __future__ import annotations

from typing import Any

import yaml

from guards.pii import engine


def _describe(recognizer: Any) -> tuple[Any, ...]:
    patterns = tuple((p.name, p.regex, p.score) for p in getattr(recognizer, "patterns", ()) or ())
    return (type(recognizer).__qualname__, recognizer.name, tuple(recognizer.supported_entities),
            recognizer.supported_language, tuple(getattr(recognizer, "context", ()) or ()), patterns,
            getattr(recognizer, "global_regex_flags", None), tuple(getattr(recognizer, "deny_list", ()) or ()))


def test_the_registry_is_presidio_s_predefined_one() -> None:
    from presidio_analyzer import RecognizerRegistry

    nlp = engine._nlp_engine(None)
    theirs = RecognizerRegistry(supported_languages=[engine.LANGUAGE])
    theirs.load_predefined_recognizers(languages=[engine.LANGUAGE], nlp_engine=nlp)
    ours = engine._full_registry(nlp)
    assert [_describe(r) for r in ours.recognizers] == [_describe(r) for r in theirs.recognizers]
    assert len(ours.recognizers) >= 15
    assert ours.supported_languages == theirs.supported_languages
    assert ours.global_regex_flags == theirs.global_regex_flags


def test_the_configuration_is_what_safe_load_reads() -> None:
    from presidio_analyzer.recognizer_registry.recognizers_loader_utils import RecognizerConfigurationLoader

    with open(RecognizerConfigurationLoader._get_full_conf_path()) as f:
        assert engine._default_configuration() == yaml.safe_load(f)
    assert yaml.__with_libyaml__  # the fast parser is there (else the build silently pays ~0.1 s more)
