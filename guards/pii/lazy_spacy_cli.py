"""spaCy imported without its command line: ``spacy.cli`` is loaded when something uses it, not before.

Why: Presidio imports spaCy (its no-model engine builds an empty spaCy ``Doc`` per text), and
spaCy's ``__init__`` imports ``spacy.cli.info`` for its ``spacy.info`` helper, which imports the
whole command line: typer, weasel, requests, httpx, jinja2... about 0.1 s of CPU on the way to a
run's first action, for nothing a scan or ``spacy.load`` uses. While spaCy is imported
(``spacy_without_cli``), ``spacy.cli`` and ``spacy.cli.info`` are placeholders; afterwards they are
taken out again, so a later ``import spacy.cli`` (or ``spacy.cli`` as an attribute, or a call of
``spacy.info``) loads the real ones, whole. If spaCy ever needs more of its CLI at import time,
the import fails and is done again the ordinary way (``import_without_cli``): slower, never wrong.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

_NAMES = ("spacy.cli", "spacy.cli.info")


class _Placeholders(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``spacy.cli`` as an empty package and ``spacy.cli.info`` holding a forwarding ``info``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _NAMES:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname == "spacy.cli")

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module

    def exec_module(self, module: ModuleType) -> None:
        if module.__name__ == "spacy.cli.info":
            module.info = _real_info  # type: ignore[attr-defined]


def _real_info(*args: Any, **kwargs: Any) -> Any:
    """``spacy.info``: the real one, imported on first call."""
    real: Callable[..., Any] = importlib.import_module("spacy.cli.info").info
    return real(*args, **kwargs)


def _spacy_getattr(name: str) -> Any:
    """``spacy.cli`` reached as an attribute (``import spacy; spacy.cli.download``) imports it."""
    if name == "cli":
        return importlib.import_module("spacy.cli")
    raise AttributeError(f"module 'spacy' has no attribute {name!r}")


def _take_out(placeholders: _Placeholders) -> None:
    if placeholders in sys.meta_path:
        sys.meta_path.remove(placeholders)
    for name in reversed(_NAMES):
        module = sys.modules.get(name)
        if module is not None and isinstance(getattr(module, "__loader__", None), _Placeholders):
            del sys.modules[name]
    spacy = sys.modules.get("spacy")
    if spacy is not None:
        cli = spacy.__dict__.get("cli")
        if cli is not None and isinstance(getattr(cli, "__loader__", None), _Placeholders):
            del spacy.__dict__["cli"]
        spacy.__dict__.setdefault("__getattr__", _spacy_getattr)


def import_without_cli(name: str) -> None:
    """``import name`` (a package that imports spaCy) with spaCy's CLI left out; the ordinary
    import if that fails (a spaCy whose ``__init__`` needs more of its CLI)."""
    if "spacy" in sys.modules:  # spaCy is already there: nothing to leave out
        importlib.import_module(name)
        return
    placeholders = _Placeholders()
    sys.meta_path.insert(0, placeholders)
    try:
        importlib.import_module(name)
    except Exception:
        _take_out(placeholders)
        importlib.import_module(name)  # again, with the real spacy.cli (what failed was not kept)
    finally:
        _take_out(placeholders)
