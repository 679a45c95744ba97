"""``canonical_host`` keeps hosts per (scheme, plain authority): the kept answer is always the one a
fresh parse gives, and an authority that is not plain is never kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import guards.urlmatch as urlmatch
from guards.urlmatch import UnparseableURL, canonical_host

AUTHORITY = st.text(alphabet="aZ09.-:@%\\/?#\t\n x\u00e9[]", min_size=0, max_size=14)
SCHEMES = st.sampled_from(["http", "https", "ws", "wss", "HTTP", "ftp", " http", "file"])
TAILS = st.sampled_from(["", "/", "/p?q=1", "?x", "#f", "\\a", "/@evil.com"])


def _fresh(url: str) -> str | None:
    try:
        host = urlmatch._parse(url).host
    except UnparseableURL:
        return None
    return host


def _memo(url: str) -> str | None:
    try:
        return canonical_host(url)
    except UnparseableURL:
        return None


@settings(max_examples=600, deadline=None)
@given(SCHEMES, AUTHORITY, TAILS, AUTHORITY)
def test_kept_host_is_the_parsed_host(scheme: str, authority: str, tail: str, other: str) -> None:
    url = f"{scheme}://{authority}{tail}"
    want = _fresh(url)
    assert _memo(url) == want
    assert _memo(url) == want  # the second time from the memo, if kept
    # another URL of the same scheme and authority prefix never takes this one's answer wrongly
    url2 = f"{scheme}://{authority}{other}"
    assert _memo(url2) == _fresh(url2)


@pytest.mark.parametrize(
    ("first", "second", "host"),
    [
        ("http://allowed.com/x", "http://allowed.com\\@evil.com/", "allowed.com"),  # WHATWG: \\ is a /
        ("http://allowed.com/x", "http://allowed.com@evil.com/", "evil.com"),
        ("http://a.com/x", "http://a.com\t.evil.com/", "a.com.evil.com"),
        ("http://2130706433/", "http://2130706433:80/", "127.0.0.1"),
        ("http://allowed.com./", "http://allowed.com./y", "allowed.com"),
    ],
)
def test_spellings_around_a_kept_host(first: str, second: str, host: str) -> None:
    canonical_host(first)
    assert canonical_host(second) == host == _fresh(second)


def test_only_plain_authorities_are_kept() -> None:
    urlmatch._host_memo.clear()
    for url in ["http://A.com/", "http://a.com%2e/", "http://u@a.com/", "http://[::1]/", "ftp://a.com/", "http://a\\b/"]:
        _memo(url)
    assert urlmatch._host_memo == {}
    canonical_host("http://a.com:81/p?q")
    assert urlmatch._host_memo == {("http", "a.com:81"): "a.com"}
