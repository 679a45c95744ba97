"""Redaction: every string the evidence writer writes passes through one ``Redactor`` first.

Redactors compose (``RedactorChain``): the secret redactor replaces each resolved secret value by
``«secret:NAME»``; the PII redactor (guards.pii) replaces detected PII by a masked form.
A redactor that fails must raise: the writer then refuses to write (fail closed), never writes raw.

Warden's own identifiers are never masked (a run id whose random suffix is all digits is not a phone
number). Two structural exemptions, neither of which weakens detection of anything else:

* **by schema** (``redact_tree``): a field that is a Warden id or hash by name (``approval_id``,
  ``action_digest``, ``value_hmac``, ``*_sha256``, ...) *and* whose value has that id's exact format
  (``ap-`` + 16 hex, 64 hex, a UUID, ...) is kept verbatim; any other value of such a field is
  redacted like every other string;
* **by value** (``RedactorChain.protect``): the run id, the approval ids and the run's evidence paths
  are registered as never-redact values; inside any text, the redactors see only what is *between*
  their occurrences (``redact_around``), the occurrences themselves are kept verbatim.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from kernel import spellings


class Redactor(Protocol):
    def redact(self, text: str) -> str: ...


class SecretRedactor:
    """Replaces every occurrence of each secret value (and its common encodings) by «secret:NAME»."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self._secrets: dict[str, str] = {}
        self._forms: list[tuple[str, tuple[str, ...]]] = []  # (name, spellings), longest secret first
        for name, value in (secrets or {}).items():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        if value:
            self._secrets[name] = value
            # Spelled out once here, not per redacted string; longest first, so a secret that
            # contains another is replaced whole.
            self._forms = [
                (n, tuple(spellings.encoded_forms(v)))
                for n, v in sorted(self._secrets.items(), key=lambda kv: -len(kv[1]))
            ]

    def redact(self, text: str) -> str:
        for name, forms in self._forms:
            for form in forms:
                if form in text:
                    text = text.replace(form, f"«secret:{name}»")
        return text


MIN_PROTECTED_LEN = 8
"""Shortest value ``protect`` accepts: a short value would shield too much of any text."""


def redact_around(text: str, redact: Callable[[str], str], protected: Iterable[str]) -> str:
    """``redact(text)``, except that every occurrence of a ``protected`` value is kept verbatim: the
    text between occurrences is redacted piece by piece (longest protected values first)."""
    values = sorted({p for p in protected if p and p in text}, key=len, reverse=True)
    if not values:
        return redact(text)
    pattern = re.compile("|".join(re.escape(v) for v in values))
    parts: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            parts.append(redact(text[pos:m.start()]))
        parts.append(m.group(0))
        pos = m.end()
    if pos < len(text):
        parts.append(redact(text[pos:]))
    return "".join(parts)


class RedactorChain:
    def __init__(self, redactors: Sequence[Redactor] = ()) -> None:
        self.redactors: list[Redactor] = list(redactors)
        self._protected: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, redactor: Redactor) -> None:
        self.redactors.append(redactor)

    @property
    def protected(self) -> frozenset[str]:
        return self._protected

    def protect(self, *values: str) -> None:
        """Register Warden's own identifiers (run id, approval ids, evidence paths) as never redacted.

        Refused (silently: the value is then redacted as any text) when shorter than
        ``MIN_PROTECTED_LEN`` or when a secret redactor would change it: a secret always wins.
        """
        keep = [v for v in values if isinstance(v, str) and len(v) >= MIN_PROTECTED_LEN]
        keep = [v for v in keep if all(r.redact(v) == v for r in self.redactors if isinstance(r, SecretRedactor))]
        if keep:
            with self._lock:
                self._protected = self._protected | frozenset(keep)

    def _redact_all(self, text: str) -> str:
        for r in self.redactors:
            text = r.redact(text)
        return text

    def redact(self, text: str) -> str:
        protected = self._protected
        if protected and text:
            return redact_around(text, self._redact_all, protected)
        return self._redact_all(text)

    def redact_many(self, texts: Sequence[str]) -> list[str]:
        """``[self.redact(t) for t in texts]`` in one batch per redactor (a detecting redactor runs
        its detector once over all of them): each text still passes every redactor in order, and
        protected values are cut out first exactly as ``redact`` does."""
        protected = self._protected
        if not protected:
            return self._redact_all_many(texts)
        # Every text as its pieces between protected occurrences; only the pieces are redacted.
        plans: list[list[tuple[bool, str]]] = []
        pieces: list[str] = []
        for text in texts:
            values = sorted({p for p in protected if p and p in text}, key=len, reverse=True)
            if not text or not values:
                plans.append([(True, text)])
                pieces.append(text)
                continue
            plan: list[tuple[bool, str]] = []
            pos = 0
            for m in re.finditer("|".join(re.escape(v) for v in values), text):
                if m.start() > pos:
                    plan.append((True, text[pos:m.start()]))
                    pieces.append(text[pos:m.start()])
                plan.append((False, m.group(0)))
                pos = m.end()
            if pos < len(text):
                plan.append((True, text[pos:]))
                pieces.append(text[pos:])
            plans.append(plan)
        done = iter(self._redact_all_many(pieces))
        return ["".join(next(done) if redact else piece for redact, piece in plan) for plan in plans]

    def _redact_all_many(self, texts: Sequence[str]) -> list[str]:
        out = list(texts)
        for r in self.redactors:
            out = redact_many(r, out)
        return out


def protect(redactor: object, *values: str) -> None:
    """``redactor.protect(*values)`` when the redactor supports never-redact values (a ``RedactorChain``)."""
    method = getattr(redactor, "protect", None)
    if callable(method):
        method(*values)


# Fields that are Warden's own ids or hashes by schema, and the exact format each has. A value of
# such a field in any other format is redacted like any other string.
_HEX64 = re.compile(r"[0-9a-f]{64}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ID_FIELDS: Mapping[str, re.Pattern[str]] = {
    "approval_id": re.compile(r"ap-[0-9a-f]{16}"),
    "run_id": re.compile(r"[0-9]{8}T[0-9]{9}Z-[a-z0-9]+(?:-[a-z0-9]+)*-[0-9a-f]{6}"),
    "record_id": _UUID,
    "intent_id": _UUID,
    "key_id": re.compile(r"[0-9a-f]{16}"),
    "action_digest": _HEX64,
    "new_digest": _HEX64,
    "value_hmac": _HEX64,
    "hash": _HEX64,
    "prev_hash": _HEX64,
    "chain_head": _HEX64,
    "sha256": _HEX64,
    "mission_sha256": _HEX64,
    "policy_sha256": _HEX64,
    "old_sha256": _HEX64,
    "new_sha256": _HEX64,
}


def is_warden_id(field: str, value: object) -> bool:
    """Is ``value`` of field ``field`` one of Warden's own ids/hashes (by field name and exact format)?"""
    pattern = ID_FIELDS.get(field)
    return pattern is not None and isinstance(value, str) and pattern.fullmatch(value) is not None


def redact_many(redactor: Redactor, texts: Sequence[str]) -> list[str]:
    """``redactor.redact`` of each text, in one batch when the redactor has ``redact_many``."""
    batch = getattr(redactor, "redact_many", None)
    if callable(batch):
        out: list[str] = batch(texts)
        if len(out) != len(texts):
            raise RuntimeError("redact_many returned a different number of texts")
        return out
    return [redactor.redact(t) for t in texts]


_LEAVES = (int, float, bool, type(None))


def _strings(value: Any, out: dict[str, None]) -> None:
    t = type(value)
    if t is str:
        out[value] = None
    elif t in _LEAVES:
        return
    elif t is dict:  # the usual case, with a record's string members taken here, not by a call each
        for k, v in value.items():
            if type(k) is not str:
                k = str(k)
            out[k] = None
            tv = type(v)
            if tv is str:
                if k not in ID_FIELDS or not is_warden_id(k, v):
                    out[v] = None
            elif tv not in _LEAVES:
                _strings(v, out)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            k = str(k)
            out[k] = None
            if type(v) is not str or k not in ID_FIELDS or not is_warden_id(k, v):
                _strings(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _strings(v, out)
    elif isinstance(value, str):
        out[value] = None


def _rebuilt(value: Any, table: Mapping[str, str]) -> Any:
    t = type(value)
    if t is str:
        return table[value]
    if t in _LEAVES:
        return value
    if t is dict:  # as the Mapping case below, with string and scalar members done here, not by a call each
        out: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str:
                k = str(k)
            tv = type(v)
            if tv is str:
                out[table[k]] = v if k in ID_FIELDS and is_warden_id(k, v) else table[v]
            elif tv in _LEAVES:
                out[table[k]] = v
            else:
                out[table[k]] = _rebuilt(v, table)
        return out
    if isinstance(value, Mapping):
        return {
            table[str(k)]: v if type(v) is str and str(k) in ID_FIELDS and is_warden_id(str(k), v)
            else _rebuilt(v, table)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [table[v] if type(v) is str else _rebuilt(v, table) for v in value]
    if isinstance(value, str):
        return table[value]
    return value


def redact_trees(
    trees: Sequence[Any], redactor: Redactor, finish: Callable[[str], str] | None = None
) -> list[Any]:
    """Redact every string (keys included) of JSON-like trees; new trees, inputs untouched.

    Every distinct string of all the trees goes to the redactor once, in one batch (``redact_many``);
    values of Warden id/hash fields in their exact format (``is_warden_id``) are kept verbatim.
    ``finish`` is then applied to each redacted string (the writer caps lengths there).
    """
    found: dict[str, None] = {}
    for tree in trees:
        _strings(tree, found)
    texts = list(found)
    done = redact_many(redactor, texts)
    if finish is not None:
        done = [finish(t) for t in done]
    table = dict(zip(texts, done, strict=True))
    return [_rebuilt(tree, table) for tree in trees]


def _native_strings(value: Any, out: list[str]) -> bool:
    """Append what ``_strings`` collects of ``value`` to ``out``, in its order, when ``value`` is a
    JSON-native tree (dicts with str keys, lists, str, int, float, bool, None: exactly these types,
    so ``jsonable`` and ``_rebuilt`` under an identity table give an equal tree); False (``out`` then
    partial) as soon as a node is anything else."""
    t = type(value)
    if t is str:
        out.append(value)
        return True
    if t in _LEAVES:
        return True
    if t is dict:
        append = out.append
        for k, v in value.items():
            if type(k) is not str:
                return False
            append(k)
            tv = type(v)
            if tv is str:
                if k not in ID_FIELDS or not is_warden_id(k, v):
                    append(v)
            elif tv not in _LEAVES and not _native_strings(v, out):
                return False
        return True
    if t is list:
        for v in value:
            if type(v) is str:
                out.append(v)
            elif type(v) not in _LEAVES and not _native_strings(v, out):
                return False
        return True
    return False


def redact_native(
    trees: Sequence[Any], redactor: Redactor, finish: Callable[[str], str] | None, convert: Callable[[Any], Any]
) -> list[Any]:
    """``redact_trees([convert(t) for t in trees], redactor, finish)`` — the same strings redacted in
    the same batch, the same trees out — except that a JSON-native tree (``_native_strings``) is not
    converted, and one none of whose strings the redaction and ``finish`` changed is returned as it
    is (the same object: the caller must not edit it). ``convert`` (the writer's ``jsonable``) must
    give a tree equal to a JSON-native one as it is."""
    work: list[Any] = []
    found: list[list[str]] = []
    native: list[bool] = []
    for tree in trees:
        strs: list[str] = []
        if _native_strings(tree, strs):
            work.append(tree)
            native.append(True)
        else:
            tree = convert(tree)
            seen: dict[str, None] = {}
            _strings(tree, seen)
            strs = list(seen)
            work.append(tree)
            native.append(False)
        found.append(strs)
    texts = list(dict.fromkeys(itertools.chain.from_iterable(found)))
    done = redact_many(redactor, texts)
    if finish is not None:
        done = [finish(t) for t in done]
    table = dict(zip(texts, done, strict=True))
    changed = {t for t, d in zip(texts, done, strict=True) if d is not t and d != t}
    return [
        tree if is_native and (not changed or changed.isdisjoint(strs)) else _rebuilt(tree, table)
        for tree, strs, is_native in zip(work, found, native, strict=True)
    ]


def redact_tree(value: Any, redactor: Redactor) -> Any:
    """``redact_trees`` of one tree."""
    return redact_trees([value], redactor)[0]
