"""A record line's shape as one regular expression: the streaming verify's fastest path.

For each record model (``line_shape``), a pattern compiled once that matches only lines which are
the writer's serialisation of a valid record of that model: ``{"hash":"<64 hex>",`` followed by
the record's RFC 8785 canonical JSON, ASCII only. It is built from the model's fields as
``verify_plain.plain_check`` is, and accepts less:

* the keys are the model's written names (aliases), each at most once, in sorted order (RFC 8785
  sorts by UTF-16 code units: for ASCII keys, Python's order), the required ones present;
* a string is printable ASCII whose only escapes are ``\\"`` and ``\\\\`` (exactly how RFC 8785
  writes such a string; no control character, no DEL, no ``\\u`` escape, nothing beyond ASCII);
* an int is ``0`` or a 1–15 digit number without a leading zero (so within 2**53: ``-0`` is not
  written), ``ge=1`` / ``ge=0`` bounds as no sign / no sign and not 0; a float is such an int or a
  non-integral decimal of at most 13 significant digits, 1e-4 <= |x| < 1e8, no trailing zero in
  its fraction: every decimal of at most 15 significant digits is the shortest repr of its double
  (DBL_DIG), and in that range Python and RFC 8785 write it the same, without exponent;
* ``Literal`` strings are alternatives, ``X | None`` adds ``null``, lists are ``[..,..]``, nested
  models are objects built the same way (their first key required);
* a ``dict[str, V]`` member (``JsonValue`` or a scalar ``V``) is a flat object of such scalars:
  its key order cannot be read by a regular expression, so the matched text is captured and
  ``flat_ok`` checks it is orjson's sorted encoding of what it decodes to (sorted, no repeated key);
* the envelope: ``schema`` and ``type`` are the literal pair the pattern was built for (and that
  ``records.record_class`` maps to the model), ``run_id`` the run's own id, ``attachments`` absent
  or ``[]`` (a line with attachments takes the other paths); ``hash``, ``prev_hash``, ``record_id``
  (printable ASCII without escapes: the text is the value) and ``seq`` (>= 1) are captured for the
  chain checks: the caller requires ``prev_hash`` to be the previous record's hash and ``hash``
  the hex SHA-256 of ``{`` + the line after it (so both are 64 lowercase hex digits, which the
  pattern leaves to those checks: 64 characters but '"').

Anything else (a type, constraint or config not known here: None) is left to the other paths; a
line that does not match is never taken as tampering, only as "not this path".
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import orjson
from pydantic import BaseModel, JsonValue
from pydantic.fields import FieldInfo

from evidence.records import Record, record_class
from evidence.verify_plain import _CONFIG_KNOWN, _SHA256_PATTERN, _analysable

_CHARS = "[ !#-\\[\\]-~]"  # printable ASCII but '"' and '\'
STRING = f'"{_CHARS}*(?:\\\\["\\\\]{_CHARS}*)*"'
"""A JSON string as RFC 8785 writes a printable-ASCII value (escapes: only \\" and \\\\)."""
_DIGITS = "[1-9][0-9]{0,14}"
INT = f"(?:0|-?{_DIGITS})"
_FRACTION = "(?:[1-9][0-9]{0,7}\\.[0-9]{0,4}[1-9]|0\\.0{0,3}[1-9](?:[0-9]{0,4}[1-9])?)"
FLOAT = f"(?:{INT}|-?{_FRACTION})"
HEX64 = '"[0-9a-f]{64}"'
_SCALAR = f"(?:{STRING}|{FLOAT}|true|false|null)"
"""A ``JsonValue`` scalar the captured objects may hold."""


def _json_value(depth: int) -> str:
    """A ``JsonValue`` of scalars, objects and arrays nested ``depth`` deep at most."""
    if depth == 0:
        return _SCALAR
    v = _json_value(depth - 1)
    return f"(?:{_SCALAR}|\\{{(?:{STRING}:{v}(?:,{STRING}:{v})*)?\\}}|\\[(?:{v}(?:,{v})*)?\\])"


_JSON_VALUE = _json_value(2)


@dataclass(frozen=True)
class Shape:
    """One model's line pattern (``match``: fullmatch of a line decoded as latin-1) and the names of
    its captured flat objects, for ``flat_ok``."""

    match: Callable[[str], re.Match[str] | None]
    groups: tuple[int, int, int, int, int]
    """The numbers of the groups ``h`` (hash), ``p`` (prev_hash), ``r`` (record_id), ``s`` (seq)
    and ``f0`` (the record's one flat object; empty when it has none)."""


def _literal(value: str) -> str | None:
    if not value.isascii() or not value.isprintable() or '"' in value or "\\" in value:
        return None
    return '"' + re.escape(value) + '"'


def _scalar(tp: Any) -> bool:
    """Is ``tp`` a string, number, bool or null type (no list, dict or model)?"""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _scalar(args[0])
    if origin is Union or origin is types.UnionType:
        return all(_scalar(a) for a in args)
    return origin is Literal or tp in (str, int, float, bool, type(None))


class _Builder:
    def __init__(self) -> None:
        self.flats: list[str] = []

    def value(self, tp: Any, meta: list[Any]) -> str | None:
        """The pattern of a JSON value that validates as ``tp`` with the constraints ``meta`` and is
        written as RFC 8785 writes it; None: not known here."""
        origin, args = get_origin(tp), get_args(tp)
        if origin is Annotated:
            if any(isinstance(a, FieldInfo) and (a.validation_alias is not None or a.discriminator is not None)
                   for a in args[1:]):
                return None
            inner = [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
            return self.value(args[0], [*meta, *inner])
        if tp is str:
            if not meta:
                return STRING
            if len(meta) == 1 and type(meta[0]).__name__ == "_PydanticGeneralMetadata" and \
                    vars(meta[0]) == {"pattern": _SHA256_PATTERN}:
                return HEX64
            return None
        if tp is int:
            if not meta:
                return INT
            if len(meta) == 1 and type(meta[0]) is annotated_types.Ge and type(meta[0].ge) is int:
                if meta[0].ge == 1:
                    return _DIGITS
                if meta[0].ge == 0:
                    return f"(?:0|{_DIGITS})"
            if len(meta) == 1 and type(meta[0]) is annotated_types.Gt and meta[0].gt == 0 and type(meta[0].gt) is int:
                return _DIGITS
            return None
        if meta:
            return self.listed(tp, meta)
        if tp is type(None):
            return "null"
        if tp is bool:
            return "(?:true|false)"
        if tp is float:
            return FLOAT
        if origin is Literal:
            alts = [_literal(a) if type(a) is str else "null" if a is None else None for a in args]
            return None if None in alts else "(?:" + "|".join(a for a in alts if a is not None) + ")"
        if origin is Union or origin is types.UnionType:
            alts = [self.value(a, []) for a in args]
            return None if None in alts else "(?:" + "|".join(a for a in alts if a is not None) + ")"
        if origin is list and len(args) == 1:
            item = self.item(args[0])
            return None if item is None else f"\\[(?:{item}(?:,{item})*)?\\]"
        if origin is dict and len(args) == 2 and args[0] is str:
            scalar = _JSON_VALUE if args[1] is JsonValue else self.value(args[1], []) if _scalar(args[1]) else None
            if scalar is None:
                return None
            name = f"f{len(self.flats)}"
            self.flats.append(name)
            return f"(?P<{name}>\\{{(?:{STRING}:{scalar}(?:,{STRING}:{scalar})*)?\\}})"
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return self.model(tp)
        return None

    def listed(self, tp: Any, meta: list[Any]) -> str | None:
        """A list with ``min_length=1``, the only list constraint known here."""
        args = get_args(tp)
        if get_origin(tp) is not list or len(args) != 1 or len(meta) != 1:
            return None
        if type(meta[0]) is not annotated_types.MinLen or meta[0].min_length != 1:
            return None
        item = self.item(args[0])
        return None if item is None else f"\\[{item}(?:,{item})*\\]"

    def item(self, tp: Any) -> str | None:
        """A list item's pattern: one with no captured object (a repeated group keeps only its last)."""
        before = len(self.flats)
        pattern = self.value(tp, [])
        return None if len(self.flats) != before else pattern

    def members(self, cls: type[BaseModel], fixed: dict[str, str]) -> list[tuple[str, bool, str]] | None:
        """(key, required, ``"key":value`` pattern) of ``cls``'s fields in RFC 8785 order; ``fixed``
        gives some keys' value patterns outright."""
        if not _analysable(cls) or not set(cls.model_config) <= _CONFIG_KNOWN:
            return None
        out: list[tuple[str, bool, str]] = []
        for n, f in cls.model_fields.items():
            if f.validation_alias not in (None, f.alias) or f.discriminator is not None:
                return None
            key = f.alias or n
            if _literal(key) is None:
                return None
            pattern = fixed.get(key)
            if pattern is None:
                pattern = self.value(f.annotation, list(f.metadata))
            if pattern is None:
                return None
            out.append((key, f.is_required(), f'"{re.escape(key)}":{pattern}'))
        return sorted(out)

    def model(self, cls: type[BaseModel]) -> str | None:
        members = self.members(cls, {})
        if not members or not members[0][1]:  # the first key must be there: it has no comma before it
            return None
        rest = "".join(f",{p}" if required else f"(?:,{p})?" for _, required, p in members[1:])
        return f"\\{{{members[0][2]}{rest}\\}}"


def line_shape(cls: type[Record], schema: str, type_: str, run_id: str) -> Shape | None:
    """The pattern of a line holding a ``cls`` record with this ``schema`` and ``type`` in run
    ``run_id``; None when a field is not one known here or the pair is not ``cls``'s."""
    if record_class({"schema": schema, "type": type_}) is not cls:
        return None
    literals = [_literal(x) for x in (schema, type_, run_id)]
    if None in literals:
        return None
    b = _Builder()
    fixed = {"schema": str(literals[0]), "type": str(literals[1]), "run_id": str(literals[2]),
             "hash": HEX64, "prev_hash": '"(?P<p>[^"]{64})"', "record_id": f'"(?P<r>{_CHARS}*)"',
             "seq": f"(?P<s>{_DIGITS})", "attachments": "\\[\\]"}
    members = b.members(cls, fixed)
    if members is None or [k for k, *_ in members if k in fixed] != sorted(fixed) or \
            not all(req for k, req, _ in members if k in fixed and k != "attachments"):
        return None
    if len(b.flats) > 1:
        return None
    body = "".join(f",{p}" if required else f"(?:,{p})?" for key, required, p in members if key != "hash")
    pattern = '\\{"hash":"(?P<h>[^"]{64})"' + body + "\\}" + ("" if b.flats else "(?P<f0>)")
    rx = re.compile(pattern)
    return Shape(rx.fullmatch, tuple(rx.groupindex[n] for n in ("h", "p", "r", "s", "f0")))  # type: ignore[arg-type]


SHAPES_FROM = 4 << 20
"""Bytes of a range from which its schemas' shapes are built (read at each scan): compiling one costs
~15-25 ms, which a run's own report (its few hundred lines verified at every run's end) would pay
for nothing; a large file's lines repay it many times over."""

FLAT_MEMO = 1 << 16
"""How many accepted flat objects the streaming pass remembers (then it forgets them all)."""
_loads, _dumps, _SORT = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS


def flat_ok(text: str) -> bool:
    """Is a captured flat object (``STRING: scalar`` pairs, matched above) written in RFC 8785's
    key order with no key twice? orjson's sorted encoding of what it decodes to must be the text."""
    try:
        return _dumps(_loads(text), None, _SORT).decode() == text
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, UnicodeDecodeError):
        return False
