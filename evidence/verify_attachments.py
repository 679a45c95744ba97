"""Attachments of a run (evidence.verify): every linked file present with its sha256, inside the
folder, and no unreferenced file in ``screenshots/``.

Only ``screenshots/`` (and the linked paths) are attachment territory: run-level files
(``run.json``, ``mission.yaml`` — itself linked from the opening run_record —, ``report.html``,
``attestation.dsse.json``) are not attachments and are not reported as extra files.
"""

from __future__ import annotations

import re
from pathlib import Path

from evidence.canonical import sha256_file
from evidence.runfolder import RunFolder
from evidence.verify_report import Line, VerifyReport, where


def check_attachments(
    folder: RunFolder, lines: list[Line], report: VerifyReport, finished: bool, count: int | None = None
) -> None:
    root = folder.root.resolve()
    referenced: set[Path] = set()
    for ln in lines:
        atts = ln.data.get("attachments")
        if not isinstance(atts, list):
            continue
        for att in atts:
            if not isinstance(att, dict):
                continue
            rel = str(att.get("path", ""))
            target = (root / rel).resolve()
            if not rel or rel.startswith("/") or not target.is_relative_to(root):
                at = where(ln.line_no, ln.data.get("seq"))
                report.problem(f"{at}: attachment path {rel!r} leaves the run folder")
                continue
            referenced.add(target)
            report.attachments_checked += 1
            if not target.is_file():
                report.problem(f"{rel}: missing — attachment deleted (linked from "
                               f"{where(ln.line_no, ln.data.get('seq'))})")
                continue
            try:
                actual = sha256_file(target)
            except OSError as e:
                report.problem(f"{rel}: cannot be read ({e.strerror or e})")
                continue
            if actual != att.get("sha256"):
                report.problem(f"{rel}: sha256 mismatch — attachment changed")
    shots = folder.screenshots
    if shots.is_dir():
        for path in sorted(p for p in shots.rglob("*") if p.is_file() or p.is_symlink()):
            if path.resolve() in referenced:
                continue
            rel = path.relative_to(folder.root).as_posix()
            prefix = re.match(r"^(\d+)-", path.name)
            next_seq = (len(lines) if count is None else count) + 1
            if not finished and prefix is not None and int(prefix.group(1)) == next_seq:
                # Named for the next seq: saved just before the kill, its record never written.
                report.notes.append(f"{rel}: saved for seq {prefix.group(1)}, whose record was never written")
            else:
                report.problem(f"{rel}: extra attachment — not referenced by any record")
