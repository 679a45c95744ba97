"""Synthetic PII canaries, and a byte-level sweep of evidence folders for them.

Every value is synthetic: reserved example domains, 555-01xx / Ofcom drama numbers, published card
test numbers and seeded Luhn-valid ones, valid-format SSNs that are not placeholders, IBANs with a
correct mod-97 checksum, documentation IP ranges (RFC 5737 / RFC 3849).

``scan_bytes_for_canaries(folder)`` looks, in every byte of every file (records, run.json, SQLite
db and journals, HTML, PNG text chunks - zTXt/iTXt decompressed - and gzip files), for each canary in
each form a leak could take: the value, its digits-only / compact spelling, URL-encoded, JSON- and
HTML-escaped, base64 (at all three alignments, so it is found inside a larger base64 blob), and
the plain md5/sha1/sha256 hex of the value (plain hashes of PII are reversible by dictionary).

``scan_sqlite_for_canaries(db)`` reads every column of every table of an SQLite database (the
evidence index, the approvals queue) through sqlite3 and looks for the same forms in each value.

Use from any test: ``from tests.guards.canaries import scan_bytes_for_canaries, CANARIES``.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import html
import json
import random
import re
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus


@dataclass(frozen=True)
class Canary:
    id: str
    entity_type: str
    value: str
    label: str  # a context phrase a page would put before it ("Phone:")


@dataclass(frozen=True)
class Hit:
    path: str
    canary_id: str
    entity_type: str
    form: str
    offset: int
    chunk: str = ""  # e.g. "png:zTXt", "gzip"


# ------------------------------------------------------------------ generation


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    num = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - num % 97:02d}{bban}"


def iban_valid(value: str) -> bool:
    v = value.replace(" ", "")
    num = int("".join(str(int(c, 36)) for c in v[4:] + v[:4]))
    return num % 97 == 1


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randrange(1, 900)
        if area == 666:
            continue
        group, serial = rng.randrange(1, 100), rng.randrange(1, 10000)
        s = f"{area:03d}-{group:02d}-{serial:04d}"
        if len(set(s.replace("-", ""))) > 2 and s.replace("-", "") not in {"123456789", "078051120"}:
            return s


def _group4(s: str) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def build_corpus(seed: int = 20240611) -> list[Canary]:
    rng = random.Random(seed)
    out: list[Canary] = []

    def add(entity: str, value: str, label: str) -> None:
        out.append(Canary(f"{entity.lower()}-{sum(c.entity_type == entity for c in out) + 1}", entity, value, label))

    for v in ("canary.alice.7f3k@example.com", "bob+warden-canary@example.org", "c.zhang.canary@mail.example.net",
              "dora_canary99@example.co.uk", "Eve.Canary-QA@Example.com"):
        add("EMAIL_ADDRESS", v, "Email:")
    for v in ("(212) 555-0143", "212-555-0187", "+1 415 555 0132", "415.555.0199",  # US
              "+44 20 7946 0958", "+49 30 901820", "+33 6 12 34 56 78", "+91 98765 43210", "+61 2 9876 5432"):
        add("PHONE_NUMBER", v, "Phone:")
    for v in ("4111111111111111", "4012 8888 8888 1881", "5555-5555-5555-4444", "5105105105105100",
              "378282246310005", "3714 496353 98431", "6011111111111117"):
        add("CREDIT_CARD", v, "Card number:")
    for prefix, length in (("4", 16), ("51", 16), ("53", 16), ("2221", 16), ("34", 15)):
        n = luhn_complete(prefix, length, rng)
        add("CREDIT_CARD", n if rng.random() < 0.5 else (_group4(n) if length == 16 else n), "Card number:")
    for _ in range(5):
        add("US_SSN", _ssn(rng), "SSN:")
    for v in ("DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "FR1420041010050500013M02606"):
        add("IBAN_CODE", v, "IBAN:")
    add("IBAN_CODE", iban("DE", "".join(str(rng.randrange(10)) for _ in range(18))), "IBAN:")
    add("IBAN_CODE", _group4(iban("GB", "NWBK" + "".join(str(rng.randrange(10)) for _ in range(14)))), "IBAN:")
    add("IBAN_CODE", iban("FR", "".join(str(rng.randrange(10)) for _ in range(20)) + "A" + "17"), "IBAN:")
    for v in ("203.0.113.47", "198.51.100.23", "192.0.2.146", "2001:db8:85a3::8a2e:370:7334", "2001:db8::42",
              "fe80::1ff:fe23:4567:890a"):
        add("IP_ADDRESS", v, "IP address:")
    return out


CANARIES: list[Canary] = build_corpus()
ENTITIES: list[str] = sorted({c.entity_type for c in CANARIES})


def by_entity(entity: str) -> list[Canary]:
    return [c for c in CANARIES if c.entity_type == entity]


def paragraph(canaries: list[Canary] | None = None) -> str:
    """All canaries, each after its label, in one paragraph."""
    return " ".join(f"{c.label} {c.value}." for c in (CANARIES if canaries is None else canaries))


# ------------------------------------------------------------------ the sweep


def _b64_cores(raw: bytes) -> Iterator[str]:
    """Base64 of ``raw`` at each alignment: the characters that depend only on ``raw``."""
    n = len(raw)
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode()
        core = enc[(k * 8 + 5) // 6: (k + n) * 8 // 6]
        if len(core) >= 6:
            yield core
            yield core.replace("+", "-").replace("/", "_")


def forms(c: Canary) -> dict[str, str]:
    """form name -> the string to look for."""
    v = c.value
    out: dict[str, str] = {"value": v}
    compact = re.sub(r"[\s().-]", "", v) if c.entity_type not in {"EMAIL_ADDRESS", "IP_ADDRESS"} else v
    if compact != v:
        out["compact"] = compact
    for variant in {v, compact}:
        vb = variant.encode()
        tag = "" if variant == v else "compact."
        out[f"{tag}url"] = quote(variant, safe="")
        out[f"{tag}url_plus"] = quote_plus(variant, safe="")
        out[f"{tag}json"] = json.dumps(variant)[1:-1]
        out[f"{tag}html"] = html.escape(variant)
        for name in ("md5", "sha1", "sha256"):
            out[f"{tag}{name}"] = hashlib.new(name, vb).hexdigest()
        for i, core in enumerate(_b64_cores(vb)):
            out[f"{tag}base64.{i}"] = core
    if c.entity_type == "EMAIL_ADDRESS":
        out["lower"] = v.lower()
        out["lower.sha256"] = hashlib.sha256(v.lower().encode()).hexdigest()
        out["lower.md5"] = hashlib.md5(v.lower().encode()).hexdigest()  # noqa: S324 (what leaks look like)
    return out


def _needles() -> tuple[re.Pattern[bytes], dict[bytes, tuple[Canary, str]]]:
    table: dict[bytes, tuple[Canary, str]] = {}
    for c in CANARIES:
        for name, s in forms(c).items():
            table.setdefault(s.encode().lower(), (c, name))
    alts = sorted(table, key=len, reverse=True)
    # Digit-only needles must not be part of a longer number (timestamps, ids).
    parts = [(b"(?<![0-9])" + re.escape(a) + b"(?![0-9])") if a.isdigit() else re.escape(a) for a in alts]
    return re.compile(b"|".join(parts), re.IGNORECASE), table


_PATTERN, _TABLE = _needles()


def scan_bytes(data: bytes, path: str = "", chunk: str = "") -> list[Hit]:
    hits = []
    for m in _PATTERN.finditer(data):
        c, form = _TABLE[m.group(0).lower()]
        hits.append(Hit(path, c.id, c.entity_type, form, m.start(), chunk))
    return hits


def _png_text_chunks(data: bytes) -> Iterator[tuple[str, bytes]]:
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8].decode("latin-1")
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        try:
            if ctype == "zTXt":
                _, _, rest = body.partition(b"\0")
                yield "png:zTXt", zlib.decompress(rest[1:])
            elif ctype == "iTXt":
                _keyword, _, rest = body.partition(b"\0")
                compressed, rest = rest[0], rest[2:]
                _, _, rest = rest.partition(b"\0")  # language
                _, _, text = rest.partition(b"\0")  # translated keyword
                yield "png:iTXt", zlib.decompress(text) if compressed else text
            elif ctype == "eXIf":
                yield "png:eXIf", body
        except (zlib.error, IndexError):
            yield f"png:{ctype}:undecodable", body


def scan_bytes_for_canaries(path: str | Path) -> list[Hit]:
    """Every canary form found in every file under ``path`` (or in ``path`` itself)."""
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    hits: list[Hit] = []
    for f in files:
        data = f.read_bytes()
        hits.extend(scan_bytes(data, str(f)))
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            for chunk, payload in _png_text_chunks(data):
                hits.extend(scan_bytes(payload, str(f), chunk))
        elif data[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError, zlib.error):
                hits.extend(scan_bytes(gzip.decompress(data), str(f), "gzip"))
    return hits


def scan_sqlite_for_canaries(db: str | Path) -> list[Hit]:
    """Every canary form in every value of every column of every table of the SQLite database ``db``
    (read as SQL, so a value is found whatever page, overflow page or WAL frame holds it)."""
    hits: list[Hit] = []
    with contextlib.closing(sqlite3.connect(f"file:{Path(db).absolute()}?mode=ro", uri=True)) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cur = conn.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names read from the schema
            columns = [d[0] for d in cur.description]
            for row in cur:
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    data = value if isinstance(value, bytes) else str(value).encode()
                    hits.extend(scan_bytes(data, f"{db}:{table}.{column}"))
    return hits


def sqlite_tables(db: str | Path) -> dict[str, int]:
    """Row count of each table of ``db`` (to show a sweep read the tables it claims to)."""
    with contextlib.closing(sqlite3.connect(f"file:{Path(db).absolute()}?mode=ro", uri=True)) as conn:
        names = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: int(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in names}  # noqa: S608
