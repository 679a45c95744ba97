"""Property tests for the canonical matcher: whatever the spelling, only listed hosts get through."""

from __future__ import annotations

import ipaddress

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from guards.urlmatch import DomainPolicy, HostPattern, RequestKind, UnparseableURL, canonical_host

# A DNS label that WHATWG treats as a domain label (the last label is never all digits, so the
# host is never read as IPv4; never xn-- so it is never an invalid punycode label).
LABEL = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(lambda s: not s.startswith("xn--"))
HOST = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
PORT = st.integers(min_value=1, max_value=65535)


def _listed(host: str, entries: list[tuple[str, bool]]) -> bool:
    """Independent oracle: exact, or a strict subdomain of a wildcard entry."""
    return any(host.endswith("." + h) if wild else host == h for h, wild in entries)


@st.composite
def spelled(draw: st.DrawFn, host: str, decoys: list[str]) -> str:
    """``host`` spelt as an attacker might: case, trailing dot, userinfo, port, decoys after it."""
    chars = [c.upper() if draw(st.booleans()) else c for c in host]
    text = "".join(chars) + ("." if draw(st.booleans()) else "")
    decoy = draw(st.sampled_from(decoys)) if decoys else "x.example"
    userinfo = draw(
        st.sampled_from(["", f"{decoy}@", f"{decoy}:443@", f"user:{decoy}@", f"{decoy}%20@", f"{decoy}%3A@", "@"])
    )
    port = draw(st.sampled_from(["", ":443", f":{draw(PORT)}"]))
    tail = draw(
        st.sampled_from(["/", f"/{decoy}", f"/?u=https://{decoy}/", f"#@{decoy}", f"?{decoy}", f"/{decoy}@{decoy}"])
    )
    scheme = draw(st.sampled_from(["https://", "HTTPS://", "https:\\\\", "https:/", "hTTps:///"]))
    return f"{scheme}{userinfo}{text}{port}{tail}"


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[tuple[str, bool]], str, str]:
    entries = draw(st.lists(st.tuples(HOST, st.booleans()), min_size=1, max_size=4))
    # the target is often built from a listed host (suffix/prefix confusion), sometimes unrelated
    base = draw(st.sampled_from([h for h, _ in entries]))
    target = draw(
        st.sampled_from(
            [
                base,
                f"{draw(LABEL)}.{base}",
                f"{base}.{draw(LABEL)}",
                f"{draw(LABEL)}{base}",
                f"{base}{draw(LABEL)}",
                draw(HOST),
            ]
        )
    )
    url = draw(spelled(target, [h for h, _ in entries]))
    return entries, target, url


def _policy(entries: list[tuple[str, bool]]) -> DomainPolicy:
    return DomainPolicy([("*." if wild else "") + h for h, wild in entries])


@settings(max_examples=600)
@given(scenario())
def test_a_host_outside_the_list_is_never_allowed_whatever_the_spelling(
    sc: tuple[list[tuple[str, bool]], str, str],
) -> None:
    entries, target, url = sc
    assert canonical_host(url) == target
    verdict = _policy(entries).check_request(url, "subresource")
    assert verdict.host == target
    assert verdict.allowed is _listed(target, entries), (url, verdict)


@settings(max_examples=400)
@given(st.text(alphabet=st.sampled_from([*"allowed.comevil@:/\\?#%2e40\t\n .[]x1", "\u3002", "\uff0e"])))
@example("allowed.com@evil.com")
@example("evil.com\\@allowed.com")
def test_anything_allowed_has_exactly_the_listed_host(tail: str) -> None:
    """Fuzz the authority: if the verdict is allow, the canonical host is exactly the listed one."""
    policy = DomainPolicy(["allowed.com"])
    for url in (f"https://{tail}", f"https://allowed.com{tail}", f"https://{tail}allowed.com", tail):
        verdict = policy.check_navigation(url)
        if verdict.allowed:
            assert verdict.host == "allowed.com"
            assert canonical_host(url) == "allowed.com"


IPV4 = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def any_host_url(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["dns", "idn", "ipv4", "ipv6"]))
    if kind == "dns":
        host = draw(HOST)
    elif kind == "idn":
        label = draw(st.text(alphabet=st.characters(min_codepoint=0xC0, max_codepoint=0x24F), min_size=1, max_size=8))
        host = f"{label}.{draw(HOST)}"
    elif kind == "ipv4":
        n = draw(IPV4)
        host = draw(st.sampled_from([str(ipaddress.IPv4Address(n)), str(n), hex(n), f"0{n:o}"]))
    else:
        address = ipaddress.IPv6Address(draw(st.integers(min_value=0, max_value=2**128 - 1)))
        host = f"[{draw(st.sampled_from([address.compressed, address.exploded]))}]"
    return f"https://{host}{draw(st.sampled_from(['', '.']))}:{draw(PORT)}/p"


@settings(max_examples=500)
@given(any_host_url())
def test_canonical_host_is_idempotent(url: str) -> None:
    try:
        host = canonical_host(url)
    except UnparseableURL:
        assume(False)
        raise
    assert canonical_host(f"https://{host}/") == host
    if not host.startswith("["):  # a trailing dot only exists for names and IPv4
        assert canonical_host(f"https://{host.upper()}./") == host
    assert HostPattern.parse(host).host == host  # an entry written in canonical form stays put
    assert _policy([(host, False)]).check_navigation(url).allowed


@settings(max_examples=400)
@given(HOST, st.data())
def test_listed_hosts_are_allowed_in_any_case_with_or_without_a_trailing_dot(host: str, data: st.DataObject) -> None:
    entry = "".join(c.upper() if data.draw(st.booleans()) else c for c in host)
    entry += data.draw(st.sampled_from(["", "."]))
    spelling = "".join(c.upper() if data.draw(st.booleans()) else c for c in host)
    spelling += data.draw(st.sampled_from(["", "."]))
    policy = DomainPolicy([entry], allow_http=True)
    for scheme in ("https", "http", "wss", "ws"):
        url = f"{scheme}://{spelling}{data.draw(st.sampled_from(['', ':443', ':8080']))}/x"
        kind: RequestKind = "websocket" if scheme.startswith("ws") else "navigation"
        verdict = policy.check_request(url, kind)
        assert verdict.allowed, (url, verdict)
        assert verdict.host == host
