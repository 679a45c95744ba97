"""Known-value matching's early outs (no 4-character window is a spelling's prefix; fewer digits than
any digit value has): the same answers as the oracle, on texts built to sit just beside them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from guards.pii.known_values import _FOLD_TABLE, KnownValueRedactor, _no_prefix
from tests.guards.test_pii_known_values import _ALPHABET, _known, _value, oracle

_SELECTORISH = st.lists(st.sampled_from(["#customers", " > ", "td:nth-of-type(", ")", "tr", "1", "12", "123",
                                         "-", " ", "(", "K", "ſ"]), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_value, st.sampled_from(["X", "PHONE_NUMBER"]), min_size=1, max_size=5),
       st.lists(st.one_of(_SELECTORISH, st.text(_ALPHABET, max_size=6)), max_size=6), st.data())
def test_early_outs_same_as_the_oracle(values: dict[str, str], pieces: list[str], data: st.DataObject) -> None:
    # Cut-down spellings: a value's first 3 or last 3 characters, its digits but one.
    near = [data.draw(st.sampled_from([v[:3], v[-3:], v[1:], v[:-1]])) for v in values]
    text = "".join(data.draw(st.permutations(pieces + near)))
    k = _known(values)
    expected = oracle(values, text)
    assert k.redact(text) == expected
    assert k.contains_known(text) == (expected != text)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_value, st.just("X"), min_size=1, max_size=5), st.text(_ALPHABET, max_size=30))
def test_no_prefix_is_the_walks_bucket_lookups(values: dict[str, str], text: str) -> None:
    k = _known(values)
    folded = text.translate(_FOLD_TABLE)
    walk = any(folded[i:i + 4] in k._literals for i in range(len(folded)))
    assert _no_prefix(folded, k._literals) == (not walk)


def test_an_empty_redactor_and_short_texts() -> None:
    k = KnownValueRedactor()
    assert k.redact("abc") == "abc"
    k.add("4111 1111 1111 1111", "CREDIT_CARD")
    assert k.redact("td:nth-of-type(12) 411") == "td:nth-of-type(12) 411"
    assert k.redact("x 4111-1111-1111-1111 y") == "x «pii:CREDIT_CARD» y"


@settings(max_examples=600, deadline=None)
@given(st.one_of(
    st.from_regex(r"[A-Za-z0-9_.~ ()+-]{1,16}", fullmatch=True),
    st.from_regex(r"\+?[0-9]{1,3} \(?[0-9]{2,4}\)? [0-9 -]{4,12}", fullmatch=True),
    st.text(alphabet=st.sampled_from([*"09 ()+-@%é\t"]), min_size=1, max_size=12),
))
def test_spaced_digits_shortcut_is_the_kernel_spellings(value: str) -> None:
    """A card or phone with spaces, brackets or "+": exactly the kernel's spellings, in its order."""
    from guards.pii.known_values import encoded_forms
    from kernel import spellings

    assert encoded_forms(value) == spellings.encoded_forms(value)
