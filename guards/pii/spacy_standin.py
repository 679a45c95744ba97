"""Presidio imported without spaCy: stand-ins for the spaCy names Presidio binds at import time.

Why: ``import presidio_analyzer`` imports spaCy (0.6-0.75 s of CPU: thinc, numpy, its pipeline
registry) although a model-less analyzer never uses it: its recognizers are regexes and
validators, and the NLP engine Warden gives them (``engine.StandInNoOpNlpEngine``) makes no spaCy
object. While Presidio is imported (``import_with_standins``), every ``spacy`` module it asks for is
a stand-in module whose names are ``StandIn`` objects; after the import those modules are taken
out again, so any later ``import spacy`` gets the real spaCy.

Safe way back: a stand-in is a lazy reference to the real object (``spacy.tokens.Doc`` ...). The
first time anything uses one at run time (a call, an attribute, ``isinstance``, a subclass), the
real spaCy is imported, every stand-in left in Presidio's modules is replaced by the real object
(``restore``), and the use goes to the real object: slower, never different. Presidio does three
things with spaCy names while it is imported; each is kept for the real spaCy:

* a decorator that registers a function (``@registry.tokenizers(...)``, ``@Language.factory(...)``):
  recorded, the function returned unchanged, the registration replayed on the real spaCy by
  ``restore``;
* a class built on a spaCy class (``class HuggingFaceTokenPipe(Pipe)``): the module that defines it
  is imported again by ``restore`` (on the real spaCy), so no class built on a stand-in stays;
* annotations: kept as they are (nothing reads them at run time).

Anything else at import time is not expected: it raises ``StandInUsed``, and ``import_with_standins``
then imports Presidio the ordinary way (with spaCy): slower, never wrong.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

_lock = threading.RLock()
_state: dict[str, Any] = {"importer": None, "restored": False, "used": False}
_window_modules: set[str] = set()  # modules imported beside Presidio (they may hold stand-ins too)


def _importing() -> bool:
    """True in the thread importing Presidio with stand-ins, while it does (other threads: real spaCy)."""
    return bool(_state["importer"] == threading.get_ident())
_registrations: list[tuple[tuple[str, ...], tuple[Any, ...], dict[str, Any], Any]] = []
_rebuilt_modules: set[str] = set()  # Presidio modules that built a class on a stand-in
_DECORATOR_FACTORIES = {("Language", "factory"), ("Language", "component")}
_ROOTS = ("spacy", "thinc")  # thinc: Presidio's Hugging Face pipe imports it directly (then numpy)


def _stood_in(fullname: str) -> bool:
    return any(fullname == root or fullname.startswith(root + ".") for root in _ROOTS)


class StandInUsed(RuntimeError):
    """A stand-in was used at import time in a way that cannot be deferred (then: the ordinary import)."""


def _resolve_path(module: str, names: tuple[str, ...]) -> Any:
    obj: Any = importlib.import_module(module)
    for name in names:
        obj = getattr(obj, name)
    return obj


class StandIn:
    """``module`` + ``names``: a lazy reference to ``getattr(import(module), names...)``."""

    __slots__ = ("_sd_module", "_sd_names")

    def __init__(self, module: str, names: tuple[str, ...]) -> None:
        object.__setattr__(self, "_sd_module", module)
        object.__setattr__(self, "_sd_names", names)

    def _sd_real(self) -> Any:
        restore()
        return _resolve_path(self._sd_module, self._sd_names)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if _importing():
            return StandIn(self._sd_module, (*self._sd_names, name))
        return getattr(self._sd_real(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _importing():
            return self._sd_decorator(args, kwargs)
        return self._sd_real()(*args, **kwargs)

    def _sd_decorator(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[Any], Any]:
        """``registry.<kind>(name)`` or ``Language.factory(name, ...)`` at import time: a decorator
        that records the registration (replayed by ``restore``) and leaves the function unchanged."""
        names = self._sd_names
        is_registry = len(names) == 2 and names[0] == "registry"
        if not (is_registry or names[-2:] in _DECORATOR_FACTORIES) or not args or not isinstance(args[0], str):
            raise StandInUsed(f"{self!r} called at import time")

        def decorate(func: Any) -> Any:
            if not callable(func):
                raise StandInUsed(f"{self!r} applied to {func!r}")
            _registrations.append(((self._sd_module, *names), args, kwargs, func))
            return func

        return decorate

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        if not _importing():
            return (self._sd_real(),)
        frame = sys._getframe(1)
        module = frame.f_globals.get("__name__", "")
        if not str(module).startswith("presidio_analyzer"):  # only Presidio's classes are rebuilt
            raise StandInUsed(f"{self!r} subclassed by {module}")
        _rebuilt_modules.add(str(module))
        return (_StandInBase,)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._sd_real())

    def __subclasscheck__(self, cls: Any) -> bool:
        return issubclass(cls, self._sd_real())

    def __repr__(self) -> str:
        return f"<spaCy stand-in {'.'.join((self._sd_module, *self._sd_names))}>"


class _StandInBase:
    """The base of a class Presidio built on a spaCy class at import time; its module is imported
    again on the real spaCy by ``restore``. Making one before that is refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        restore()
        raise StandInUsed(f"{type(self).__qualname__} was built on a spaCy stand-in: use it after restore()")


class _StandInModule(ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if not _importing():
            return getattr(importlib.import_module(self.__name__), name)
        return StandIn(self.__name__, (name,))


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``spacy``, ``thinc`` and their submodules as stand-in modules (packages: anything may be below)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not _stood_in(fullname) or not _importing():
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module = _StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: ModuleType) -> None:
        return None


def _take_out(finder: _Finder) -> None:
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
    for name in [n for n in sys.modules if _stood_in(n)]:
        if isinstance(sys.modules[name], _StandInModule):
            del sys.modules[name]


def import_with_standins(name: str, fallback: Callable[[str], None]) -> bool:
    """``import name`` (Presidio) with spaCy stand-ins; True if they were used. ``fallback(name)``
    (the ordinary import) when spaCy is already imported, or when the stand-ins cannot serve."""
    with _lock:
        if "spacy" in sys.modules or _state["used"]:
            fallback(name)
            return False
        finder = _Finder()
        before = set(sys.modules)
        sys.meta_path.insert(0, finder)
        _state["importer"] = threading.get_ident()
        try:
            importlib.import_module(name)
        except Exception:
            _state["importer"] = None
            _take_out(finder)
            for mod in set(sys.modules) - before:
                del sys.modules[mod]  # what was half built on stand-ins is not kept
            _registrations.clear()
            _rebuilt_modules.clear()
            fallback(name)
            return False
        finally:
            _state["importer"] = None
            _take_out(finder)
        _window_modules.update(set(sys.modules) - before)
        _state["used"] = True
        return True


def standins_in_use() -> bool:
    """True while Presidio's modules hold stand-ins (imported that way and not restored yet)."""
    return bool(_state["used"]) and not _state["restored"]


def restore() -> None:
    """The real spaCy for Presidio: import it, replay the recorded registrations, import again the
    modules that built a class on a stand-in, and put the real objects in place of every stand-in
    in Presidio's modules. Idempotent, thread-safe; a no-op unless stand-ins were used."""
    with _lock:
        if not _state["used"] or _state["restored"]:
            return
        from guards.pii.lazy_spacy_cli import import_without_cli

        import_without_cli("spacy")
        _state["restored"] = True  # from here a stand-in resolves (its module is real now)
        for (root, *names), args, kwargs, func in _registrations:
            if getattr(func, "__module__", None) not in _rebuilt_modules:  # those register again below
                _resolve_path(root, tuple(names))(*args, **kwargs)(func)
        _registrations.clear()
        reloaded = set()
        for mod_name in sorted(_rebuilt_modules):
            rebuilt = sys.modules.get(mod_name)
            if rebuilt is not None:
                importlib.reload(rebuilt)  # on the real spaCy: its classes, its registrations
                reloaded.add(mod_name)
        _rebuilt_modules.clear()
        for mod_name in sorted(_window_modules):
            module = sys.modules.get(mod_name)
            if module is None:
                continue
            for key, value in list(vars(module).items()):
                if isinstance(value, StandIn):
                    setattr(module, key, _resolve_path(value._sd_module, value._sd_names))
                elif getattr(value, "__module__", None) in reloaded and mod_name not in reloaded:
                    # a class or function imported from a module made again: the new one
                    fresh = getattr(sys.modules[value.__module__], getattr(value, "__qualname__", ""), value)
                    setattr(module, key, fresh)
