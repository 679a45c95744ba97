"""The benchmark site, served on 127.0.0.1 (reached as http://bench.localhost:PORT), plain or PII-heavy.

Why a variant: Warden's costliest work is on pages full of personal data (every page is scanned
before its screenshot, found values are masked and recorded). ``pii=True`` serves the same pages
with a ~50 KB customer table added to each HTML page (different rows per page, seeded, so no page
is a cache hit for another): synthetic e-mails, phone numbers, Luhn-valid card numbers, SSNs, IBANs
with a valid checksum and documentation IPs. Both sides of the benchmark load the same bytes.
"""

from __future__ import annotations

import functools
import random
import threading
import zlib
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SITE = Path(__file__).resolve().parent / "site"
HOST = "bench.localhost"
PII_PAGE_BYTES = 50_000
_FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena"]
_LAST = ["Archer", "Brook", "Castell", "Dunmore", "Ellery", "Fenwick", "Garrow", "Hollis", "Ivers"]


def _luhn(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _iban(rng: random.Random) -> str:
    bban = "".join(str(rng.randint(0, 9)) for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # "DE00" moved to the end, letters as numbers (D=13, E=14)
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(101, 899) if a != 666])
    return f"{area:03d}-{rng.randint(10, 99):02d}-{rng.randint(1000, 9999):04d}"


def pii_rows(page: str, target: int = PII_PAGE_BYTES) -> str:
    """A customer table of about ``target`` bytes, seeded by the page's name."""
    rng = random.Random(zlib.crc32(page.encode()))
    rows, size, n = [], 0, 0
    while size < target:
        n += 1
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        card = _luhn(rng.choice(["4", "51", "52"]), 16, rng)
        cells = [
            f"{first} {last}",
            f"{first.lower()}.{last.lower()}{n}@example.com",
            f"(212) 555-01{rng.randint(0, 99):02d}",
            " ".join(card[i:i + 4] for i in range(0, 16, 4)),
            f"SSN {_ssn(rng)}",
            _iban(rng),
            f"192.0.2.{rng.randint(1, 254)}",
        ]
        row = "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>\n"
        rows.append(row)
        size += len(row)
    return ('<section id="customers"><h2>Customer records</h2><table>\n'
            "<tr><th>Name</th><th>E-mail</th><th>Phone</th><th>Card</th><th>SSN</th><th>IBAN</th><th>IP</th></tr>\n"
            + "".join(rows) + "</table></section>")


class _Handler(SimpleHTTPRequestHandler):
    """Static files, no access log; with ``pii`` the HTML pages carry the customer table."""

    pii = False

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.split("?", 1)[0].lstrip("/")
        if not self.pii or not name.endswith(".html") or not (SITE / name).is_file():
            super().do_GET()
            return
        html = (SITE / name).read_text(encoding="utf-8")
        body = html.replace("</main>", pii_rows(name) + "</main>", 1).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_site(*, pii: bool = False) -> tuple[ThreadingHTTPServer, str]:
    """Start the site in a daemon thread; returns the server and its base URL."""
    handler = type("BenchHandler", (_Handler,), {"pii": pii})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(SITE)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="bench-site", daemon=True).start()
    return server, f"http://{HOST}:{server.server_address[1]}"
