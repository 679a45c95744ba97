"""Presidio's import leaves spaCy's command line out (guards/pii/lazy_spacy_cli.py), and spaCy still
works whole afterwards: ``spacy.info``, ``spacy.cli``, a spaCy model as ``pii.nlp_model``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(script: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_presidio_imports_without_spacy_cli_and_spacy_stays_whole() -> None:
    got = _python(
        """
        import sys
        from guards.pii.engine import build_analyzer, default_entities, import_presidio
        import_presidio()
        print([m for m in ("spacy.cli", "spacy.cli.info", "weasel", "typer") if m in sys.modules] == [])
        found = build_analyzer(default_entities()).analyze("mail alice@example.com", language="en")
        print([r.entity_type for r in found] == ["EMAIL_ADDRESS"])
        import spacy
        print(isinstance(spacy.info(), dict))          # the real spacy.info, imported on first call
        print(callable(spacy.cli.download))            # spacy.cli as an attribute: the real package
        import spacy.cli
        print(spacy.cli.download.__module__ == "spacy.cli.download")
        """
    )
    assert got == ["True"] * 5


def test_a_package_needing_spacy_cli_at_import_gets_the_real_one(tmp_path: Path) -> None:
    (tmp_path / "needs_cli.py").write_text("import spacy.cli.download\nfrom spacy.cli import download\n")
    got = _python(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from guards.pii.lazy_spacy_cli import import_without_cli
        import_without_cli("needs_cli")
        import needs_cli, spacy.cli
        print(callable(needs_cli.download), spacy.cli.__file__.endswith("__init__.py"))
        """,
        str(tmp_path),
    )
    assert got == ["True", "True"]


def test_a_spacy_model_directory_loads_after_the_lazy_import(tmp_path: Path) -> None:
    got = _python(
        """
        import sys
        from guards.pii.engine import build_analyzer, import_presidio
        import_presidio()
        import spacy
        spacy.blank("en").to_disk(sys.argv[1])
        analyzer = build_analyzer(["EMAIL_ADDRESS"], nlp_model=sys.argv[1])
        found = analyzer.analyze("mail alice@example.com", language="en")
        print([r.entity_type for r in found])
        """,
        str(tmp_path / "blank-en"),
    )
    assert got == ["['EMAIL_ADDRESS']"]
