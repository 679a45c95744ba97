"""An unchanged page's scan is skipped (PiiRuntime._same_scan) only when it would change nothing:
the very blocks the text read kept, on the same page, no value learnt since, the page remembered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guards.observed import TextBlock
from missions.loader import load_mission
from runner.assembly import build_pii
from runner.pii_runtime import PiiRuntime

URL = "https://allowed.localhost/customers"
ROWS = ["Customers", "Alice Example", "alice@example.com", "+1 212 555 0142", "Notes: call back on Monday",
        "Contact person: Dora Quill"]


class Recorder:
    """Keeps what the runtime records (the recorder is not what is under test here)."""

    def __init__(self) -> None:
        self.findings: list[dict[str, Any]] = []

    def record_soon(self, _type: Any, _actor: Any, **fields: Any) -> None:
        self.findings.append(fields)


@pytest.fixture
def runtime(tmp_path: Path) -> PiiRuntime:
    path = tmp_path / "m.yaml"
    path.write_text(
        "mission: m\nversion: 1\ndata_classes: [pii]\nboundaries:\n  allowed_domains: [allowed.localhost]\n"
        "  allowed_actions: [goto]\npii:\n  on_page: record\nsteps:\n  - goto: https://allowed.localhost/\n",
        encoding="utf-8",
    )
    rt = build_pii(load_mission(path, environ={}), {}, tmp_path)
    rt.bind(Recorder())  # type: ignore[arg-type]
    return rt


def _blocks() -> list[TextBlock]:
    return [TextBlock(text=t, selector=f"#r{i}") for i, t in enumerate(ROWS)]


def _spy(rt: PiiRuntime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = rt.scanner.scan_page

    def scan_page(page_key: str, texts: Any, **kw: Any) -> Any:
        calls.append(page_key)
        return real(page_key, texts, **kw)

    monkeypatch.setattr(rt.scanner, "scan_page", scan_page)
    return calls


def test_the_kept_blocks_of_an_unchanged_page_are_not_scanned_again(
    runtime: PiiRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = _blocks()
    runtime._scan_blocks(1, URL, kept)
    masks = runtime.screenshot_masks(URL)
    assert masks is not None and {"#r2", "#r3"} <= set(masks)
    calls = _spy(runtime, monkeypatch)
    runtime._scan_blocks(2, URL, list(kept))  # what read_text_blocks returns for {same}: a new list, the same blocks
    assert calls == [] and runtime.screenshot_masks(URL) == masks


@pytest.mark.parametrize("change", ["equal new blocks", "another page", "a value learnt", "page forgotten"])
def test_anything_that_could_change_the_scan_scans_again(
    runtime: PiiRuntime, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    kept = _blocks()
    runtime._scan_blocks(1, URL, kept)
    url, blocks = URL, list(kept)
    if change == "equal new blocks":  # a fresh read: equal text, other objects
        blocks = _blocks()
    elif change == "another page":
        url = "https://allowed.localhost/other"
    elif change == "a value learnt":  # typed by the mission: every block holding it is masked from now on
        runtime.register_typed("Dora Quill")
    else:
        runtime.scanner.forget_page(URL)
    calls = _spy(runtime, monkeypatch)
    runtime._scan_blocks(2, url, blocks)
    assert len(calls) == 1
    masks = runtime.screenshot_masks(url)
    assert masks is not None
    if change == "a value learnt":
        assert "#r5" in masks  # the effect the skip would have missed
