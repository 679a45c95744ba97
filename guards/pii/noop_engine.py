"""Presidio's no-op NLP engine without spaCy: what a model-less analyzer gets when Presidio was
imported with spaCy stand-ins (``spacy_standin``).

Presidio's ``NoOpNlpEngine`` makes a spaCy ``Vocab`` when built and an empty spaCy ``Doc`` per
text; nothing reads that ``Doc`` but as an empty sequence of tokens (the context enhancer skips
its work when there are none, ``to_json`` lists none). This one is that engine with an empty tuple
in their place: the same artifacts otherwise (no entities, lemmas, indices or scores; no keywords),
the same answers to every other question (it is a subclass); its class keeps Presidio's name,
which the scanner reads to call model-less recognizers directly. Tested against Presidio's own.
"""

from __future__ import annotations

from typing import Any


def spacy_free_noop_engine(language: str) -> Any:
    """A loaded no-op engine for ``language`` that never touches spaCy."""
    from presidio_analyzer.nlp_engine import NlpArtifacts
    from presidio_analyzer.nlp_engine import NoOpNlpEngine as PresidioNoOp

    class NoOpNlpEngine(PresidioNoOp):
        """Presidio's no-op engine, an empty tuple where it puts an empty spaCy ``Doc``."""

        def __init__(self, models: list[dict[str, str]]) -> None:
            self.models = self._validate_models(models)
            self._vocab = None  # type: ignore[assignment]  # never read: no Doc is made
            self.nlp = None

        def _create_empty_nlp_artifacts(self, language: str) -> Any:
            return NlpArtifacts(entities=[], tokens=(),  # type: ignore[arg-type]  # an empty Doc's stand-in
                                tokens_indices=[], lemmas=[], nlp_engine=self,
                                language=language, scores=[])

    engine = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "no_op"}])
    engine.load()
    return engine
