"""verify_run: every tampering is caught and named; intact and interrupted runs pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evidence.records import Actor, ExceptionRecord
from evidence.verify import verify_run


def _verify(h: Any, with_index: bool = True) -> Any:
    return verify_run(h.folder.root, h.index if with_index else None)


def _has(report: Any, *fragments: str) -> bool:
    return any(all(f in p for f in fragments) for p in report.problems)


def test_long_run_verifies(make_run: Any) -> None:
    h = make_run(steps=30)
    report = _verify(h)
    assert report.ok, report.problems
    assert report.status == "completed"
    assert report.record_count == 92
    assert report.head == h.info.chain_head
    assert report.attachments_checked == 30


def test_edit_a_field(make_run: Any, tamper: Any) -> None:
    h = make_run()
    t = tamper(h)
    recs = t.lines()
    recs[6]["outcome"] = "failed"
    t.write(recs)
    report = _verify(h)
    assert report.problems == ["record 7 (seq 7): hash mismatch — record edited"]


def test_edit_and_rehash_one_record_alone(make_run: Any, tamper: Any) -> None:
    h = make_run()
    t = tamper(h)
    recs = t.lines()
    recs[6] = t.rehash({**recs[6], "outcome": "failed"})
    t.write(recs)
    report = _verify(h)
    assert _has(report, "record 8 (seq 8): prev_hash does not match the hash of record 7 (seq 7)", "rehashed")
    assert _has(report, "index: record seq 7 has a different hash")
    assert not _has(report, "hash mismatch")
    # Without the index the chain link alone still catches it.
    assert _has(_verify(h, with_index=False), "record 8 (seq 8): prev_hash does not match")


def test_delete_a_record(make_run: Any, tamper: Any) -> None:
    h = make_run()
    t = tamper(h)
    recs = t.lines()
    del recs[4]
    t.write(recs)
    report = _verify(h)
    assert _has(report, "record 5 (seq 6): seq gap — seq 5 missing (record deleted)")
    assert _has(report, "run.json: record_count 17 but records.jsonl holds 16")


def test_duplicate_a_record(make_run: Any, tamper: Any) -> None:
    h = make_run()
    t = tamper(h)
    recs = t.lines()
    recs.insert(5, recs[4])
    t.write(recs)
    report = _verify(h)
    assert _has(report, "record 6 (seq 5): duplicate of record 5 (seq 5)", "record duplicated")
    assert not _has(report, "prev_hash")


def test_swap_two_records(make_run: Any, tamper: Any) -> None:
    h = make_run()
    t = tamper(h)
    recs = t.lines()
    recs[4], recs[5] = recs[5], recs[4]
    t.write(recs)
    report = _verify(h)
    assert report.problems == [
        "record 5 (seq 6): out of order — seq 6 comes before seq 5 (records reordered)",
        "record 6 (seq 5): out of order — seq 5 after seq 6 (records reordered)",
    ]


def test_insert_a_forged_record(make_run: Any, tamper: Any) -> None:
    h = make_run()
    t = tamper(h)
    recs = t.lines()
    forged = t.rehash({**recs[5], "record_id": "00000000-0000-4000-8000-000000000000", "outcome": "failed"})
    recs.insert(5, forged)
    t.write(recs)
    report = _verify(h)
    assert _has(report, "record 7 (seq 6): seq 6 appears twice — a record was inserted")
    assert not report.ok


def test_whole_chain_rewrite_is_caught_by_heads(make_run: Any, tamper: Any) -> None:
    h = make_run()
    t = tamper(h)
    recs = t.lines()
    del recs[4]
    t.write(t.rechain(recs))
    report = _verify(h)
    assert _has(report, "run.json: chain_head", "records were removed, added or rewritten")
    assert _has(report, "index: chain head", "behind the index's back")


def test_changed_deleted_and_extra_screenshots(make_run: Any) -> None:
    h = make_run()
    shots = sorted(h.folder.screenshots.iterdir())
    changed, deleted = shots[0], shots[1]
    changed.write_bytes(changed.read_bytes()[:-1] + b"\x00")
    deleted.unlink()
    (h.folder.screenshots / "9999-step99-after.png").write_bytes(b"planted")
    report = _verify(h)

    def rel(p: Path) -> str:
        return p.relative_to(h.folder.root).as_posix()

    assert f"{rel(changed)}: sha256 mismatch — attachment changed" in report.problems
    assert _has(report, f"{rel(deleted)}: missing — attachment deleted")
    assert "screenshots/9999-step99-after.png: extra attachment — not referenced by any record" in report.problems
    assert len(report.problems) == 3


def test_interrupted_run_verifies_up_to_last_record(make_run: Any) -> None:
    h = make_run(steps=4, finish=False)
    h.writer.close()  # killed: no end record, run.json still "running"
    report = _verify(h)
    assert report.ok, report.problems
    assert report.status == "interrupted"
    assert report.record_count == 13


def test_torn_final_line_of_killed_run_is_a_note(make_run: Any) -> None:
    h = make_run(steps=2, finish=False)
    h.writer.close()
    with open(h.folder.records, "ab") as f:
        f.write(b'{"schema":"warden.action_rec')
    report = _verify(h)
    assert report.ok, report.problems
    assert any("incomplete final write" in n for n in report.notes)


def test_torn_final_line_of_finished_run_is_a_problem(make_run: Any) -> None:
    h = make_run(steps=2)
    with open(h.folder.records, "ab") as f:
        f.write(b'{"seq":')
    assert _has(_verify(h), "records.jsonl line 9: incomplete line")


def test_tail_cut_behind_the_index(make_run: Any, tamper: Any) -> None:
    h = make_run(steps=5, finish=False)
    h.writer.close()
    t = tamper(h)
    t.write(t.lines()[:-3])
    report = _verify(h)
    assert not report.ok
    assert _has(report, "index: chain head", "(record 16) is not in records.jsonl", "cut from the tail")
    # Without the index, the orphaned screenshot of the removed step still gives it away.
    assert _has(_verify(h, with_index=False), "screenshots/0016-step05-after.png: extra attachment")


def test_tail_cut_without_index_or_attachment_is_a_stated_limit(start_run: Any, tamper: Any) -> None:
    h = start_run()
    h.step(1)
    h.step(2, screenshot=False)
    h.writer.close()
    t = tamper(h)
    t.write(t.lines()[:-2])  # intent and outcome of step 2: no screenshot to betray the cut
    assert not _verify(h).ok
    alone = _verify(h, with_index=False)
    assert alone.ok
    assert alone.status == "interrupted"
    assert any("cannot be told" in n for n in alone.notes)


def test_kill_between_screenshot_and_its_record(start_run: Any) -> None:
    h = start_run()
    h.step(1)
    seq = h.writer.next_seq
    h.writer.attach_bytes(b"png", f"screenshots/{seq:04d}-step02-after.png", "image/png")
    h.writer.close()  # killed before the outcome record
    report = _verify(h)
    assert report.ok, report.problems
    assert any("whose record was never written" in n for n in report.notes)


def test_tail_cut_of_finished_run_without_index(make_run: Any, tamper: Any) -> None:
    h = make_run(steps=3)
    t = tamper(h)
    t.write(t.lines()[:-1])
    report = _verify(h, with_index=False)
    assert _has(report, "run.json: chain_head")
    assert _has(report, "run ended (completed) but the last record is not its closing run_record")


def _append_behind_the_index(t: Any, n: int) -> None:
    """``n`` records chained onto the file's last one, rehashed, the index left as it was."""
    recs = t.lines()
    prev = recs[-1]
    for i in range(n):
        prev = t.rehash({**prev, "seq": prev["seq"] + 1, "prev_hash": prev["hash"],
                         "record_id": f"00000000-0000-4000-8000-{i:012d}", "attachments": []})
        recs.append(prev)
    t.write(recs)


def test_records_appended_behind_the_index(make_run: Any, tamper: Any) -> None:
    h = make_run(steps=2, finish=False)
    h.writer.close()
    _append_behind_the_index(tamper(h), 3)
    report = _verify(h)
    assert _has(report, "3 records after the index's chain head", "appended behind the index's back")


def test_one_group_after_the_index_head_is_the_crash_window_not_an_append(make_run: Any, tamper: Any) -> None:
    # A process killed between writing a group (a step's decision and intent) and indexing it.
    h = make_run(steps=2, finish=False)
    h.writer.close()
    _append_behind_the_index(tamper(h), 2)
    report = _verify(h)
    assert report.ok, report.problems
    assert any("2 record(s) after the index's chain head" in n and "recover" in n for n in report.notes), report.notes


def test_one_group_appended_to_a_finished_run_is_still_caught(make_run: Any, tamper: Any) -> None:
    # The crash window is only for a run that stopped without closing: two records appended after a
    # closed run's end record (rehashed, index untouched) are an append, whatever their number.
    h = make_run(steps=2)
    _append_behind_the_index(tamper(h), 2)
    report = _verify(h)
    assert not report.ok
    assert _has(report, "index: chain head"), report.problems


def test_not_json_line(make_run: Any) -> None:
    h = make_run(steps=3)
    lines = h.folder.records.read_bytes().splitlines(keepends=True)
    lines[3] = b"{not json\n"
    h.folder.records.write_bytes(b"".join(lines))
    report = _verify(h)
    assert "records.jsonl line 4: not valid JSON" in report.problems


def test_invalid_record_type_shape(make_run: Any, tamper: Any) -> None:
    h = make_run(steps=2)
    t = tamper(h)
    recs = t.lines()
    recs[2] = t.rehash({**recs[2], "phase": "sideways"})
    t.write(recs)
    assert _has(_verify(h), "record 3 (seq 3): not a valid action_record record", "phase")


def test_a_field_spelled_by_its_python_name_is_not_the_writers_line(make_run: Any, tamper: Any) -> None:
    # pydantic accepts ``schema_`` for ``schema`` (populate_by_name); the writer never writes it.
    h = make_run(steps=2)
    t = tamper(h)
    recs = t.lines()
    rec = dict(recs[2])
    rec["schema_"] = rec.pop("schema")
    recs[2] = t.rehash(rec)
    t.write(recs)
    assert _has(_verify(h), "record 3 (seq 3): not a valid action_record record", "schema_")


def test_foreign_run_id(make_run: Any, tamper: Any) -> None:
    h = make_run(steps=2)
    t = tamper(h)
    recs = t.lines()
    recs[1]["run_id"] = "someone-else"
    t.write(recs)
    assert _has(_verify(h), "record 2 (seq 2): run_id 'someone-else' is not this run")


def test_missing_run_json_and_records(make_run: Any) -> None:
    h = make_run(steps=1)
    h.folder.run_json.unlink()
    h.folder.records.unlink()
    report = _verify(h)
    assert "run.json: missing" in report.problems
    assert "records.jsonl: missing" in report.problems


def test_evidence_error_run_without_end_record_verifies(start_run: Any) -> None:
    h = start_run()
    h.step(1)
    h.info = h.info.finish(status="evidence_error", exit_code=5, chain_head=h.writer.head,
                           record_count=h.writer.count)
    h.folder.write_run_info(h.info)
    h.index.upsert_run_info(h.info, h.folder.root)
    h.writer.close()
    report = _verify(h)
    assert report.ok, report.problems
    assert report.status == "evidence_error"


def test_bit_flip_sweep_is_always_detected(start_run: Any) -> None:
    """Flip one bit in every byte of records.jsonl: verify must fail every time (systemd-style sweep)."""
    h = start_run(use_index=False)
    h.writer.append(ExceptionRecord, actor=Actor(type="runner", id="warden"),
                    category="x", error_type="y", message="line\nbreak \u2028 «secret:P»", mitigation="recorded")
    h.finish()
    original = h.folder.records.read_bytes()
    assert _verify(h).ok
    undetected = []
    for i in range(len(original)):
        for bit in (0x01, 0x20):
            flipped = bytearray(original)
            flipped[i] ^= bit
            h.folder.records.write_bytes(bytes(flipped))
            if verify_run(h.folder.root, None).ok:
                undetected.append((i, bit, bytes(original[max(0, i - 10):i + 10])))
    h.folder.records.write_bytes(original)
    assert not undetected


@pytest.mark.parametrize("status", ["completed"])
def test_report_names_folder_and_run(make_run: Any, status: str) -> None:
    h = make_run(steps=1)
    report = _verify(h)
    assert report.run_id == h.run_id
    assert Path(report.folder) == h.folder.root
    assert json.loads(h.folder.run_json.read_text())["status"] == status


# -- the outcome is proven: run.json against the closing run_record, and the index ---------------------


def test_run_json_outcome_equals_the_closing_record(make_run: Any) -> None:
    h = make_run(steps=2)
    info = json.loads(h.folder.run_json.read_text())
    assert info["outcome"] == info["status"] == "completed"
    report = _verify(h)
    assert report.ok and report.index_checked and report.exit_code == 0, report.problems


@pytest.mark.parametrize(("field", "value"), [("status", "stopped"), ("exit_code", 3), ("outcome", "stopped")])
def test_forged_run_json_outcome_names_the_field(make_run: Any, field: str, value: Any) -> None:
    h = make_run(steps=2)
    data = json.loads(h.folder.run_json.read_text())
    data[field] = value
    h.folder.run_json.write_text(json.dumps(data))
    report = _verify(h, with_index=False)
    assert _has(report, f"run.json: {field} ", "closing run_record"), report.problems


def test_forged_index_outcome_names_the_index(make_run: Any) -> None:
    h = make_run(steps=2)
    h.index.upsert_run_info(h.info.model_copy(update={"status": "failed", "exit_code": 4}), h.folder.root)
    report = _verify(h)
    assert _has(report, "index: status 'failed', exit code 4", "says 'completed', exit code 0",
                "the index row was altered"), report.problems


def test_index_count_disagreeing_is_named(make_run: Any) -> None:
    h = make_run(steps=2)
    h.index.set_head(h.run_id, h.info.chain_head, h.info.record_count + 1)
    assert _has(_verify(h), "index: chain head", f"{h.info.record_count + 1} records")


def test_legacy_run_json_without_outcome_is_a_note(make_run: Any) -> None:
    h = make_run(steps=1)
    data = json.loads(h.folder.run_json.read_text())
    del data["outcome"]
    h.folder.run_json.write_text(json.dumps(data))
    report = _verify(h)
    assert report.ok, report.problems
    assert any("no outcome field" in n for n in report.notes)


def test_index_still_running_for_a_closed_folder_is_a_note(make_run: Any) -> None:
    """The process closed the folder and died before updating its index row: not tampering."""
    h = make_run(steps=1)
    h.index.upsert_run(run_id=h.run_id, mission_id=h.info.mission_id, mission_version=h.info.mission_version,
                       mission_sha256=h.info.mission_sha256, started_at=h.info.started_at, status="running",
                       folder=h.folder.root)
    report = _verify(h)
    assert report.ok, report.problems
    assert any("index still says running" in n for n in report.notes)


def test_a_run_opened_for_a_key_must_be_signed_by_it(start_run: Any, tmp_path: Path) -> None:
    from evidence.records import RunRecord
    from evidence.signing import keygen, load_private_key, load_public_key

    priv, pub = keygen(tmp_path / "k")
    signer = load_private_key(priv)
    from evidence.redact import SecretRedactor
    from evidence.writer import EvidenceWriter

    h = start_run(use_index=False)
    h.writer.close()  # the fixture's opening record names no key: this run is written by hand
    h.folder.records.unlink()
    w = EvidenceWriter(h.folder, h.run_id, SecretRedactor())
    runner = Actor(type="runner", id="warden")
    fields: dict[str, Any] = dict(initiator={"user": "alice"}, started_by="warden run", mission_id=h.info.mission_id,
                                  mission_version="3", mission_sha256=h.info.mission_sha256,
                                  started_at=h.info.started_at, signing_key_id=signer.key_id)
    w.append(RunRecord, actor=runner, phase="start", **fields)
    w.append(RunRecord, actor=runner, phase="end", outcome="completed", exit_code=0, **fields)
    info = h.info.finish(status="completed", exit_code=0, chain_head=w.head, record_count=w.count)
    w.close()
    h.folder.write_run_info(signer.sign_info(info))
    ok = verify_run(h.folder.root, None, load_public_key(pub))
    assert ok.ok, ok.problems
    h.folder.write_run_info(info)  # signature stripped
    assert _has(verify_run(h.folder.root), "not signed, but the opening run_record says", signer.key_id)
    h.folder.write_run_info(signer.sign_info(info).model_copy(update={"exit_code": 1}))
    report = verify_run(h.folder.root, None, load_public_key(pub))
    assert _has(report, "signature does not match"), report.problems
    assert _has(report, "run.json: exit_code 1"), report.problems


def test_lines_are_hash_first_canonical_and_their_key_order_is_checked(make_run: Any) -> None:
    """The writer's line is its hash, then its canonical JSON (so verify encodes each record once);
    a line with the same values in another key order, or a number spelled otherwise, is an edit."""
    h = make_run(steps=3)
    lines = h.folder.records.read_text().splitlines()
    for line in lines:
        data = json.loads(line)
        body = {k: v for k, v in data.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert line == '{"hash":"' + data["hash"] + '",' + canonical[1:]
    outcome = next(i for i, ln in enumerate(lines) if '"phase":"outcome"' in ln)
    data = json.loads(lines[outcome])
    reordered = {"hash": data["hash"], **{k: data[k] for k in reversed(list(data)) if k != "hash"}}
    lines[outcome] = json.dumps(reordered, ensure_ascii=False, separators=(",", ":"))
    h.folder.records.write_text("\n".join(lines) + "\n")
    assert _has(_verify(h), f"record {outcome + 1}", "not the writer's serialisation")


def test_a_large_file_scanned_in_ranges_verifies_and_catches_edits_at_and_across_the_cuts(
    make_run: Any, tamper: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large files are streamed in byte ranges by worker processes (evidence.verify_parallel); the
    ranges must meet exactly. Forced here on a small run: intact, it verifies; an edit, a swap across
    a cut, a record duplicated into another range or a range that does not link are all caught."""
    import evidence.verify_parallel as vp

    monkeypatch.setattr(vp, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(vp, "HEAD_START", 0)  # even ranges (the head start is tested in test_verify_parallel)
    monkeypatch.setattr(vp, "_spare_cores", lambda: 3)
    h = make_run(steps=20)
    assert len(vp.ranges(str(h.folder.records), 3)) == 3
    here: list[tuple[int, int | None]] = []  # ranges this process scanned itself
    real = vp.scan_range
    monkeypatch.setattr(vp, "scan_range", lambda p, r, a=0, b=None: (here.append((a, b)), real(p, r, a, b))[1])
    assert _verify(h).ok
    assert here == [vp.ranges(str(h.folder.records), 3)[0]]  # the other two were answered by worker processes
    good = h.folder.records.read_bytes()
    t = tamper(h)
    cut = vp.ranges(str(h.folder.records), 3)[1][0]
    at = good[:cut].count(b"\n")  # index of the first record of the second range
    from evidence.verify_stream import Fallback, stream_lines

    for change in ("edit", "swap", "duplicate id", "unlinked"):
        h.folder.records.write_bytes(good)
        recs = t.lines()
        if change == "edit":
            recs[at + 2]["outcome"] = "failed"
        elif change == "swap":
            recs[at - 1], recs[at] = recs[at], recs[at - 1]
        elif change == "duplicate id":  # the whole chain rewritten around it: only the id is wrong
            recs[-3]["record_id"] = recs[1]["record_id"]
            recs = t.rechain(recs)
        else:  # the second range rechained on its own: each range is intact, they do not meet
            prev = "f" * 64
            for i in range(at, len(recs)):
                recs[i] = t.rehash({**recs[i], "prev_hash": prev})
                prev = recs[i]["hash"]
        t.write(recs)
        with pytest.raises(Fallback):
            stream_lines(h.folder, h.run_id)
        assert not _verify(h).ok, change
    h.folder.records.write_bytes(good)
    assert _verify(h).ok
