"""Pydantic's plugin lookup without ``importlib.metadata`` on `warden run`'s way to the launch.

Why: the first pydantic model built in a process (the mission schema, ``missions/model.py``) asks
``pydantic.plugin._loader.get_plugins()`` for the plugins registered under the ``pydantic`` entry
point group. That module imports ``importlib.metadata`` (with email, zipfile, csv...: ~40 ms of CPU,
~190 M instructions) and then reads every installed distribution's entry points, in the main
thread before Chromium's launch; no plugin is installed where Warden runs.

``install()`` puts a stand-in for that module first. Its ``get_plugins`` answers "none" after
reading only what ``importlib.metadata`` itself would read for the answer: the ``entry_points.txt``
of every ``*.dist-info`` / ``*.egg-info`` folder in each ``sys.path`` folder (``''`` is the working
directory), with no ``[pydantic]`` section in any. On any doubt — a ``sys.path`` entry that is a
file (a zip) or an ``.egg``, a meta path finder other than the standard ``PathFinder`` that lists
distributions, an unreadable folder or file, or a ``pydantic`` section — it hands over to
pydantic's own loader, imported for real (and left in its place), so the plugins found are exactly
pydantic's. ``PYDANTIC_DISABLE_PLUGINS`` is honoured as pydantic honours it. The answer is kept
for the process's life, as pydantic keeps its own.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import types
from collections.abc import Iterable
from typing import Any

_NAME = "pydantic.plugin._loader"
_lock = threading.Lock()
_none_installed: bool | None = None


def install() -> None:
    """The stand-in as ``pydantic.plugin._loader``, unless that module is already imported."""
    with _lock:
        if _NAME in sys.modules:
            return
        module = types.ModuleType(_NAME, __doc__)
        module.get_plugins = get_plugins  # type: ignore[attr-defined]
        module.__getattr__ = _from_real_loader  # type: ignore[method-assign]  # any other name: pydantic's own
        module.__warden_standin__ = True  # type: ignore[attr-defined]
        sys.modules[_NAME] = module


def get_plugins(*args: Any, **kwargs: Any) -> Iterable[Any]:
    """Pydantic's ``get_plugins``: () when no distribution can register one, else pydantic's own answer.
    Called in any other way than pydantic 2.x's ``get_plugins()``, it is pydantic's own that answers."""
    if args or kwargs:
        return _real_loader().get_plugins(*args, **kwargs)  # type: ignore[no-any-return]
    if os.getenv("PYDANTIC_DISABLE_PLUGINS") in ("__all__", "1", "true"):
        return ()
    if _no_plugin_installed():
        return ()
    return _real_loader().get_plugins()  # type: ignore[no-any-return]


def _from_real_loader(name: str) -> Any:
    """A name of pydantic's loader other than ``get_plugins`` (a later pydantic may import more)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_real_loader(), name)


def _real_loader() -> types.ModuleType:
    with _lock:
        current = sys.modules.get(_NAME)
        if current is not None and getattr(current, "__warden_standin__", False):
            del sys.modules[_NAME]
        return importlib.import_module(_NAME)


def _no_plugin_installed() -> bool:
    global _none_installed
    with _lock:
        if _none_installed is None:
            try:
                _none_installed = not _may_register_a_plugin()
            except Exception:  # any doubt: pydantic's own lookup decides
                _none_installed = False
        return _none_installed


def _may_register_a_plugin() -> bool:
    """True unless no distribution ``importlib.metadata`` would list declares a ``pydantic`` entry point."""
    from importlib.machinery import PathFinder

    if any(hasattr(f, "find_distributions") and f is not PathFinder for f in sys.meta_path):
        return True
    for entry in sys.path:
        root = entry or "."
        if not isinstance(entry, str) or entry.lower().endswith(".egg"):
            return True
        if not os.path.exists(root):
            continue  # nothing there for importlib.metadata either (e.g. a path hook's name)
        if not os.path.isdir(root):
            return True  # a zip: read by importlib.metadata, not here
        for name in os.listdir(root):
            low = name.lower()
            if low.endswith((".dist-info", ".egg-info")) and _declares_pydantic(os.path.join(root, name)):
                return True
    return False


def _declares_pydantic(folder: str) -> bool:
    if not os.path.isdir(folder):
        return False  # an .egg-info file holds no entry points
    path = os.path.join(folder, "entry_points.txt")
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("[") and line.endswith("]") and line[1:-1].strip() == "pydantic":
                return True
    return False
