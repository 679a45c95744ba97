"""Known-value redaction: the bucketed matcher gives exactly what one big alternation gave (the oracle)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from guards.pii.redactor import KnownValueRedactor, _bounded, encoded_forms, marker


def oracle(values: dict[str, str], text: str) -> str:
    """The former implementation: one IGNORECASE alternation of every spelling, longest regex first."""
    alts: list[tuple[str, str]] = []
    for v, label in values.items():
        for form in encoded_forms(v):
            alts.append((_bounded(form), label))
        digits = re.sub(r"\D", "", v)
        if len(digits) >= 7 and re.fullmatch(r"[\d\s().+/-]+", v):
            alts.append(("(?<!\\d)" + r"[\s().+/-]{0,3}".join(digits) + "(?!\\d)", label))
    if not alts or not text:
        return text
    alts.sort(key=lambda a: -len(a[0]))
    labels = {f"g{i}": label for i, (_, label) in enumerate(alts)}
    pattern = re.compile("|".join(f"(?P<g{i}>{rx})" for i, (rx, _) in enumerate(alts)), re.IGNORECASE)
    return pattern.sub(lambda m: marker(labels[m.lastgroup or ""]), text)


def _known(values: dict[str, str]) -> KnownValueRedactor:
    k = KnownValueRedactor()
    for v, label in values.items():
        k.add(v, label)
    return k


# Few characters, so values overlap, nest, repeat and meet in the text; case pairs and the characters
# sre folds specially (ſ/s, K/k, ı/i, İ), separators of the digit spellings, characters that get encoded.
_ALPHABET = "aAbBsSſkKKiIıİ0123456789 -.()+/@%&<\"'\\é_"
_value = st.text(_ALPHABET, min_size=4, max_size=10).map(str.strip).filter(lambda v: len(v) >= 4)
_values = st.dictionaries(_value, st.sampled_from(["EMAIL_ADDRESS", "PHONE_NUMBER", "X"]), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(_values, st.lists(st.one_of(st.text(_ALPHABET, max_size=12), _value), max_size=8), st.data())
def test_same_output_as_the_big_alternation(values: dict[str, str], pieces: list[str], data: st.DataObject) -> None:
    # The text is built from the values' own spellings (in any case) and noise around them.
    spelled = [data.draw(st.sampled_from(encoded_forms(v))) for v in values]
    mixed = [p.upper() if i % 3 == 1 else p for i, p in enumerate(pieces + spelled)]
    text = "".join(data.draw(st.permutations(mixed)))
    k = _known(values)
    expected = oracle(values, text)
    assert k.redact(text) == expected
    assert k.contains_known(text) == (expected != text)


def test_digit_spellings_and_nested_values_like_the_oracle() -> None:
    values = {"4111 1111 1111 1111": "CREDIT_CARD", "+44 20 7946 0958": "PHONE_NUMBER", "jane@x.io": "EMAIL_ADDRESS",
              "jane@x.io.uk": "X", "Doe, Jane": "PERSON"}
    text = ("card 4111-1111-1111-1111 / 4111111111111111x / 44 (20) 7946-0958 mail JANE%40X.IO.UK, jane@x.io. "
            "doe, jane; Doe,&#x27; 94111111111111111 abjane@x.io")
    out = _known(values).redact(text)
    assert out == oracle(values, text)
    assert "4111-" not in out and "4111111111111111x" not in out and "7946" not in out
    assert "94111111111111111 abjane@x.io" in out  # other digits, inside a longer token: left alone


def test_contains_known_stops_without_rewriting() -> None:
    k = _known({"Jane.Q.Doe@example.com": "EMAIL_ADDRESS"})
    assert k.contains_known("to: JANE.Q.DOE%40EXAMPLE.COM")
    assert not k.contains_known("to: jane.q.doe@example.community")  # inside a longer token: not a value
    assert not KnownValueRedactor().contains_known("anything")


def test_many_values_one_large_text_same_as_oracle() -> None:
    values = {f"customer{i:04d}@shop{i % 7}.example": "EMAIL_ADDRESS" for i in range(60)}
    values |= {f"+1 555 {i:03d} {i * 7 % 10000:04d}": "PHONE_NUMBER" for i in range(60)}
    rows = [f"<tr><td>{v.upper() if i % 2 else v}</td><td>note {i}</td></tr>" for i, v in enumerate(values)]
    text = "".join(rows) + " 15550420294 customer0001%40shop1.example"
    out = _known(values).redact(text)
    assert out == oracle(values, text)
    assert "customer" not in out.lower()
