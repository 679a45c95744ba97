"""`${vars.X}` / `${secrets.X}` interpolation: single pass, escapes, errors that never carry values."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from missions.interpolate import Interpolated, InterpolationError, interpolate, interpolate_args, references

VARS = {"order": "A-17", "who": "ada"}
SECRETS = {"PW": "hunter2-secret"}


def test_vars_and_secrets_are_replaced_and_reported() -> None:
    result = interpolate("user ${vars.who} pw ${secrets.PW} order ${vars.order}", VARS, SECRETS)
    assert result.value == "user ada pw hunter2-secret order A-17"
    assert result.vars_used == frozenset({"who", "order"})
    assert result.secrets_used == frozenset({"PW"})


def test_text_without_references_is_unchanged() -> None:
    result = interpolate("price: $5 {not a ref} $ {x}", VARS, SECRETS)
    assert result == Interpolated("price: $5 {not a ref} $ {x}", frozenset(), frozenset())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$${vars.who}", "${vars.who}"),
        ("a $${ b", "a ${ b"),
        ("$${vars.who} is ${vars.who}", "${vars.who} is ada"),
        ("$$${vars.who}", "$ada"),  # a literal `$` right before a value
        ("$$$${vars.who}", "$${vars.who}"),
        ("costs $$5 or $5", "costs $$5 or $5"),  # dollars not before `{` are plain text
        ("$$", "$$"),
        ("{$}", "{$}"),
    ],
)
def test_escapes(text: str, expected: str) -> None:
    assert interpolate(text, VARS, SECRETS).value == expected


def test_values_are_not_expanded_again() -> None:
    """Text extracted from a page must never turn into a secret."""
    result = interpolate("${vars.evil}", {"evil": "${secrets.PW}"}, SECRETS)
    assert result.value == "${secrets.PW}"
    assert result.secrets_used == frozenset()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${vars.nope}", "undefined variable ${vars.nope}"),
        ("${secrets.NOPE}", "undeclared secret ${secrets.NOPE}"),
        ("${env.HOME}", "unknown namespace 'env' in ${env.HOME}"),
        ("${vars.x", "unterminated reference"),
        ("${vars}", "malformed reference '${vars}'"),
        ("${vars.a b}", "malformed reference"),
        ("${}", "malformed reference"),
    ],
)
def test_errors_name_the_reference(text: str, fragment: str) -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate(text, VARS, SECRETS)
    assert fragment in str(info.value)
    assert isinstance(info.value, KeyError)
    assert "hunter2" not in str(info.value)


def test_error_after_a_secret_does_not_carry_its_value() -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate("${secrets.PW}${vars.missing}", VARS, SECRETS)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value)
    assert info.value.reference == "${vars.missing}"


def test_repr_hides_the_value() -> None:
    assert "hunter2" not in repr(interpolate("${secrets.PW}", VARS, SECRETS))


def test_references_in_order_including_unknown_namespaces() -> None:
    text = "${vars.a} $${vars.escaped} ${secrets.B} ${ vars.c } ${env.D}"
    assert references(text) == [("vars", "a"), ("secrets", "B"), ("vars", "c"), ("env", "D")]
    assert references("no refs") == []
    with pytest.raises(InterpolationError):
        references("${oops")


def test_interpolate_args_walks_nested_values() -> None:
    args = {
        "selector": "#${vars.who}",
        "value": "${secrets.PW}",
        "timeout": 5,
        "approve": True,
        "extra": {"list": ["${vars.order}", 3, {"deep": "${secrets.PW}!"}]},
    }
    out, used = interpolate_args(args, VARS, SECRETS)
    assert out == {
        "selector": "#ada",
        "value": "hunter2-secret",
        "timeout": 5,
        "approve": True,
        "extra": {"list": ["A-17", 3, {"deep": "hunter2-secret!"}]},
    }
    assert used == frozenset({"PW"})
    assert args["value"] == "${secrets.PW}"  # the input is not modified


def test_interpolate_args_keys_are_not_interpolated() -> None:
    out, used = interpolate_args({"${vars.who}": "x"}, VARS, SECRETS)
    assert out == {"${vars.who}": "x"}
    assert used == frozenset()


def test_interpolate_args_raises_on_unknown() -> None:
    with pytest.raises(InterpolationError):
        interpolate_args({"value": ["${vars.nope}"]}, VARS, SECRETS)


# ----------------------------------------------------------------------------- properties

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
LITERAL = st.text(st.characters(codec="utf-8", exclude_characters="$"), max_size=8)
VALUES = st.text(st.characters(codec="utf-8"), max_size=12)
TEMPLATE_OF = {"lit": "{}", "var": "${{vars.{}}}", "esc": "$${{", "dollar_var": "$$${{vars.{}}}"}


@given(
    parts=st.lists(
        st.one_of(
            LITERAL.map(lambda s: ("lit", s)),
            NAMES.map(lambda n: ("var", n)),
            NAMES.map(lambda n: ("dollar_var", n)),
            st.just(("esc", "")),
        ),
        max_size=12,
    ),
    values=st.dictionaries(NAMES, VALUES, max_size=5),
)
def test_interpolation_is_exact_concatenation(parts: list[tuple[str, str]], values: dict[str, str]) -> None:
    """Template = literals + references + escapes; the result is literals + values + `${`."""
    names = [p for kind, p in parts if kind in ("var", "dollar_var")]
    variables = {n: values.get(n, f"<{n}>") for n in names} | values
    template = "".join(TEMPLATE_OF[k].format(s) for k, s in parts)
    expected = "".join(
        {"lit": s, "esc": "${", "var": variables.get(s, ""), "dollar_var": "$" + variables.get(s, "")}[k]
        for k, s in parts
    )
    result = interpolate(template, variables, {})
    assert result.value == expected
    assert result.vars_used == frozenset(names)
    assert result.secrets_used == frozenset()


@given(
    literals=st.lists(LITERAL, min_size=1, max_size=6),
    values=st.dictionaries(NAMES, VALUES, min_size=1, max_size=5),
)
def test_no_defined_var_reference_survives(literals: list[str], values: dict[str, str]) -> None:
    assume(all("${" not in v for v in values.values()))
    names = sorted(values)
    template = "".join(lit + f"${{vars.{names[i % len(names)]}}}" for i, lit in enumerate(literals))
    out = interpolate(template, values, {}).value
    for name in names:
        assert f"${{vars.{name}}}" not in out


@given(secret=st.text(min_size=1, max_size=20), missing=NAMES)
def test_errors_never_contain_secret_values(secret: str, missing: str) -> None:
    assume(secret not in f"undefined variable ${{vars.{missing}}}")
    with pytest.raises(InterpolationError) as info:
        interpolate("${secrets.S} ${vars." + missing + "}", {}, {"S": secret})
    assert secret not in str(info.value)
