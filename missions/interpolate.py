"""`${vars.NAME}` / `${secrets.NAME}` references in mission strings (SPEC §2).

Interpolation is a single pass: a value that itself contains `${...}` (text extracted from a page,
say) is inserted as-is and never expanded again, so a page cannot make Warden type a secret.
`$${` is the escape for a literal `${`: in a run of `$` just before `{`, each `$$` is one literal `$`
and an odd `$` left over starts a reference, so `$${vars.x}` is the text `${vars.x}` and
`$$${vars.price}` is `$` followed by the price. Dollars elsewhere (`$5`, `$$`) are plain text.
Errors name the reference, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

NAMESPACES: tuple[str, ...] = ("vars", "secrets")

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(KeyError):
    """A reference that cannot be resolved or parsed; a KeyError so callers can treat it as lookup."""

    def __init__(self, message: str, reference: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reference = reference

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


@dataclass(frozen=True)
class Interpolated:
    """The result of interpolating one string; ``value`` may hold a secret, so it stays out of repr."""

    value: str = field(repr=False)
    secrets_used: frozenset[str] = frozenset()
    vars_used: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Ref:
    namespace: str
    name: str
    text: str  # the reference as written, e.g. "${vars.x}"


def _tokens(text: str) -> Iterator[str | _Ref]:
    """Split ``text`` into literal chunks and references; raise on a malformed ``${``."""
    i = 0
    literal: list[str] = []
    n = len(text)
    while i < n:
        if text[i] == "$":
            j = i
            while j < n and text[j] == "$":
                j += 1
            if j == n or text[j] != "{":  # `$5`, `$$`: dollars not before `{` are plain text
                literal.append(text[i:j])
                i = j
                continue
            # k dollars before `{`: each `$$` is one literal `$`; an odd one left starts a reference
            k = j - i
            literal.append("$" * (k // 2))
            if k % 2 == 0:
                literal.append("{")
                i = j + 1
                continue
            i = j - 1
        if text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                snippet = text[i : i + 20]
                raise InterpolationError(
                    f"unterminated reference {snippet!r}: missing '}}' (write $${{ for a literal ${{)", snippet
                )
            ref_text = text[i : end + 1]
            inner = text[i + 2 : end].strip()
            namespace, dot, name = inner.partition(".")
            if not dot or not _NAME_RE.fullmatch(namespace) or not _NAME_RE.fullmatch(name):
                raise InterpolationError(
                    f"malformed reference {ref_text!r}: write ${{vars.NAME}} or ${{secrets.NAME}}"
                    " (or $${ for a literal ${)",
                    ref_text,
                )
            if literal:
                yield "".join(literal)
                literal = []
            yield _Ref(namespace, name, ref_text)
            i = end + 1
            continue
        literal.append(text[i])
        i += 1
    if literal:
        yield "".join(literal)


def references(text: str) -> list[tuple[str, str]]:
    """Every ``(namespace, name)`` referenced in ``text``, in order, including unknown namespaces.

    Unknown namespaces are returned (not raised) so a checker can report them with a location;
    a syntactically malformed ``${`` raises :class:`InterpolationError`.
    """
    return [(t.namespace, t.name) for t in _tokens(text) if isinstance(t, _Ref)]


def interpolate(text: str, vars: Mapping[str, str], secrets: Mapping[str, str]) -> Interpolated:
    """Replace references in ``text``; raise :class:`InterpolationError` for any unknown name."""
    out: list[str] = []
    used_secrets: set[str] = set()
    used_vars: set[str] = set()
    for tok in _tokens(text):
        if isinstance(tok, str):
            out.append(tok)
        elif tok.namespace == "vars":
            if tok.name not in vars:
                raise InterpolationError(f"undefined variable {tok.text}", tok.text)
            out.append(vars[tok.name])
            used_vars.add(tok.name)
        elif tok.namespace == "secrets":
            if tok.name not in secrets:
                raise InterpolationError(f"undeclared secret {tok.text}", tok.text)
            out.append(secrets[tok.name])
            used_secrets.add(tok.name)
        else:
            raise InterpolationError(
                f"unknown namespace {tok.namespace!r} in {tok.text}: use ${{vars.NAME}} or ${{secrets.NAME}}",
                tok.text,
            )
    return Interpolated("".join(out), frozenset(used_secrets), frozenset(used_vars))


def interpolate_args(
    args: Mapping[str, Any], vars: Mapping[str, str], secrets: Mapping[str, str]
) -> tuple[dict[str, Any], frozenset[str]]:
    """Interpolate every string value in a (nested) step-args mapping; keys are left alone.

    Returns the new mapping and the names of the secrets it now contains, so the caller knows
    which values to redact and which domain bindings to enforce.
    """
    used: set[str] = set()

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            result = interpolate(value, vars, secrets)
            used.update(result.secrets_used)
            return result.value
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    out = {k: walk(v) for k, v in args.items()}
    return out, frozenset(used)
