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


# Digits, every separator a digit spelling allows (and a few it does not), a non-ASCII digit.
_DIGIT_ALPHABET = "0123456789012345 -().+/x_٣"
_digit_value = st.text("0123456789 -().+/٣", min_size=7, max_size=16).map(str.strip).filter(
    lambda v: sum(c.isdecimal() for c in v) >= 7)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_digit_value, st.sampled_from(["CREDIT_CARD", "PHONE_NUMBER"]), min_size=1, max_size=5),
       st.lists(st.text(_DIGIT_ALPHABET, max_size=10), max_size=8), st.data())
def test_digit_spellings_same_as_the_big_alternation(values: dict[str, str], pieces: list[str],
                                                     data: st.DataObject) -> None:
    # Values' digits re-spelled with other separators, glued to noise digits on either side.
    gaps = st.sampled_from(["", " ", "-", "  ", "().", "    "])
    respelled = ["".join(c + data.draw(gaps) for c in v if c.isdecimal()) for v in values]
    text = "".join(data.draw(st.permutations(pieces + respelled + list(values))))
    k = _known(values)
    expected = oracle(values, text)
    assert k.redact(text) == expected
    assert k.contains_known(text) == (expected != text)


def test_values_learnt_between_calls_same_as_the_oracle() -> None:
    first = {"ana.lima@example.org": "EMAIL_ADDRESS", "4111 1111 1111 1111": "CREDIT_CARD"}
    later = {"ana.lima@example.org.br": "EMAIL_ADDRESS", "4111 1111 1111 11112": "X", "Ana Lima": "PERSON"}
    text = "ANA.LIMA@EXAMPLE.ORG.BR, ana.lima%40example.org; 4111-1111-1111-1111 / 4111111111111111 1112; ana lima"
    k = _known(first)
    assert k.redact(text) == oracle(first, text)
    for v, label in later.items():
        k.add(v, label)
    k.add("ana.lima@example.org", "TYPED_VALUE")  # relabelled: keeps its place in the order
    everything = first | later | {"ana.lima@example.org": "TYPED_VALUE"}
    assert k.redact(text) == oracle(everything, text)
    assert "lima" not in k.redact(text).lower()


def test_a_customer_table_same_as_the_oracle() -> None:
    # The shape of a PII-heavy page (benchmarks/bench_site.py): many values sharing long prefixes
    # (one mail domain, one phone exchange, card prefixes), every one of them known.
    values: dict[str, str] = {}
    rows = []
    for i in range(40):
        cells = [f"ada.archer{i}@example.com", f"(212) 555-01{i % 100:02d}", f"4{i:03d} 1111 2222 {i * 37 % 10000:04d}",
                 f"{101 + i:03d}-45-{1000 + i:04d}", f"DE{10 + i} 3704 0044 0532 0130 {i:02d}", f"192.0.2.{i + 1}"]
        values |= dict.fromkeys(cells, "X")
        rows.append("<tr>" + "".join(f"<td>{c.upper() if i % 3 else c}</td>" for c in cells) + "</tr>")
    text = "\n".join(rows) + " 212-555-0101 ada.archer1%40example.com 41111111222200370"
    out = _known(values).redact(text)
    assert out == oracle(values, text)
    assert "archer" not in out.lower() and "555" not in out


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.one_of(
    st.text(alphabet=st.sampled_from([*"aZ09_.~-@ +%&<>\"'\\/é\n"]), min_size=1, max_size=12),
    st.from_regex(r"[A-Za-z0-9_.~-]{1,8}@[A-Za-z0-9_.~-]{1,8}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_.~-]{1,12}", fullmatch=True),
))
def test_encoded_forms_shortcuts_are_the_kernel_spellings(value: str) -> None:
    """The shortcuts (unreserved characters; a plain e-mail) give exactly the kernel's spellings."""
    from kernel import spellings

    assert encoded_forms(value) == spellings.encoded_forms(value)
