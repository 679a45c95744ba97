"""A secret is redacted from evidence under every spelling the guards know it by (kernel.spellings).

The evidence redactor and the secret guards share one list of spellings; a spelling the guard
refuses on the wire must not then be written in clear into a record.
"""

from __future__ import annotations

import html
import json
from urllib.parse import quote, quote_plus

import pytest

from evidence.redact import SecretRedactor
from guards.secrets import encoded_forms as guard_forms
from kernel.spellings import encoded_forms

SECRET = 'pässwörd "x"&<y> a@b/+'  # non-ASCII, quotes, HTML and URL specials, @, +, space


@pytest.mark.parametrize(
    "spelled",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET, safe=""),
        quote(SECRET, safe="@"),
        quote_plus(SECRET, safe="@"),
        json.dumps(SECRET)[1:-1],  # \u00e4 escapes
        json.dumps(SECRET, ensure_ascii=False)[1:-1],  # raw ä, escaped quotes
        html.escape(SECRET),
    ],
)
def test_every_spelling_is_redacted(spelled: str) -> None:
    redactor = SecretRedactor({"PW": SECRET})
    out = redactor.redact(f"before {spelled} after")
    assert out == "before «secret:PW» after"


def test_the_guard_knows_every_spelling_the_redactor_knows_and_base64_besides() -> None:
    plain = encoded_forms(SECRET)
    assert set(plain) <= set(guard_forms(SECRET))
    assert set(guard_forms(SECRET)) - set(plain)  # base64 cores: a header like Authorization: Basic


def test_a_longer_secret_containing_a_shorter_one_is_replaced_whole() -> None:
    redactor = SecretRedactor({"SHORT": "hunter22", "LONG": "hunter22-and-more"})
    assert redactor.redact("x hunter22-and-more y hunter22") == "x «secret:LONG» y «secret:SHORT»"
    redactor.add("LATER", "added-after-construction")
    assert redactor.redact("added-after-construction") == "«secret:LATER»"
