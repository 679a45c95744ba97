"""The risk score (SPEC §4, docs/risk.md): the worked example exactly, the decisions, and the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from guards.risk import DENY_AT, assess, combine
from missions.model import Mission
from runner.cli import cli

SPEC_EXAMPLE = Path(__file__).parents[1] / "runner" / "data" / "missions" / "spec_example.yaml"


def _spec() -> dict[str, Any]:
    """The SPEC §2 example, minus PERSON in pii.entities (it needs a spaCy model; irrelevant to risk)."""
    data: dict[str, Any] = yaml.safe_load(SPEC_EXAMPLE.read_text())
    data["pii"]["entities"] = [e for e in data["pii"]["entities"] if e != "PERSON"]
    return data


def _mission(**changes: Any) -> Mission:
    data = _spec()
    for key, value in changes.items():
        if key.startswith("boundaries__"):
            data["boundaries"][key.removeprefix("boundaries__")] = value
        elif value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return Mission.model_validate(data)


def _read_only() -> dict[str, Any]:
    return {
        "mission": "status-page",
        "version": 1,
        "boundaries": {"allowed_domains": ["status.example.com"], "allowed_actions": ["goto", "extract"]},
        "steps": [{"goto": "https://status.example.com/"}, {"extract": {"selector": "#state", "as": "state"}}],
    }


# ----------------------------------------------------------------------------- the documented worked example


def test_worked_example_from_docs_exactly() -> None:
    """docs/risk.md: the SPEC §2 mission → S 58, A 46, credit 65 %, inherent 52, score 18, allow with approvals."""
    risk = assess(_mission())
    assert risk.sensitivity == 58
    assert [f.points for f in risk.sensitivity_factors] == [15, 25, 15, 3]  # pii, financial, secrets, EMAIL
    assert risk.autonomy == 46
    assert [f.points for f in risk.autonomy_factors] == [28, 15, 3, 0]  # 4 kinds, host+wildcard, 11 steps, scripted
    assert [f.points for f in risk.mitigations] == [15, 25, 5, 10, 10]
    assert risk.credit == 65
    assert risk.inherent == 52
    assert risk.score == 18
    assert risk.decision == "allow with approvals"
    assert combine(58, 46, 65) == (52, 18)


def test_docs_state_the_same_numbers() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "risk.md").read_text()
    for fact in ("S = 58", "A = 46", "C = 65", "I = 52", "score = 18", "allow with approvals"):
        assert fact in doc, fact


def test_combine_rounds_half_up_and_caps_credit() -> None:
    assert combine(1, 2, 0) == (2, 2)  # 1.5 → 2
    assert combine(100, 100, 100) == (100, 30)  # credit capped at 70 %
    assert combine(0, 0, 50) == (0, 0)


# ----------------------------------------------------------------------------- decisions


def test_read_only_mission_is_allowed_without_approvals() -> None:
    risk = assess(Mission.model_validate(_read_only()))
    assert risk.decision == "allow"
    assert risk.sensitivity == 0 and risk.autonomy == 5  # one exact host, no side effects, 2 steps
    assert not risk.approvals_in_force


def test_sensitive_side_effects_without_any_gate_are_denied() -> None:
    steps = [s for s in _spec()["steps"] if not (isinstance(s.get("click"), dict) and s["click"].get("approve"))]
    risk = assess(_mission(danger_zones_defaults=False, danger_zones=[], steps=steps))
    assert risk.decision == "deny"
    assert any("no approval gate" in r for r in risk.reasons)


def test_secrets_over_plain_http_are_denied() -> None:
    risk = assess(_mission(boundaries__allow_http=True))
    assert risk.decision == "deny"
    assert any("plain http" in r for r in risk.reasons)


def test_a_high_residual_score_is_denied() -> None:
    data = _spec()
    data["data_classes"] = ["pii", "financial", "secrets", "regulated"]
    data["pii"]["allow"] = ["CREDIT_CARD", "US_SSN", "IBAN_CODE", "PERSON"]
    data["pii"]["on_request"] = "record"
    data["pii"]["on_input"] = "record"
    data["approvals"] = {"timeout": 60}
    data["boundaries"]["allowed_actions"] = ["goto", "click", "fill", "select", "press", "check", "uncheck"]
    data["boundaries"]["allowed_domains"] = ["*.a.example", "*.b.example", "*.c.example"]
    data["boundaries"]["allow_http"] = True
    data["boundaries"]["downloads"] = "quarantine"
    data["secrets"] = {}
    data["steps"] = [{"click": {"text": "x"}}] * 40
    risk = assess(Mission.model_validate(data))
    assert risk.sensitivity == 100 and risk.autonomy == 42 + 30 + 8 + 6 + 10
    assert risk.score >= DENY_AT
    assert risk.decision == "deny"


def test_approve_steps_alone_are_a_weaker_gate() -> None:
    risk = assess(_mission(danger_zones_defaults=False, danger_zones=[]))
    assert risk.decision == "allow with approvals"
    assert any(f.label.startswith("approvals:") and f.points == 15 for f in risk.mitigations)


@given(st.sets(st.sampled_from(["pii", "secrets", "financial", "regulated"])), st.sampled_from(["pii", "regulated"]))
def test_more_data_classes_never_lower_sensitivity(classes: set[str], extra: str) -> None:
    base = assess(_mission(data_classes=sorted(classes))).sensitivity
    more = assess(_mission(data_classes=sorted(classes | {extra}))).sensitivity
    assert more >= base


@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 69))
def test_more_mitigation_never_raises_the_score(s: int, a: int, credit: int) -> None:
    assert combine(s, a, credit + 1)[1] <= combine(s, a, credit)[1]
    assert 0 <= combine(s, a, credit)[1] <= 100


# ----------------------------------------------------------------------------- the commands


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "mission.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_check_prints_the_risk_and_exits_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(_write(tmp_path, _spec()))], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert re.search(r"data sensitivity: 58/100", text)
    assert re.search(r"autonomy: +46/100", text)
    assert re.search(r"mitigations: +-65%", text)
    assert re.search(r"score: +18/100", text)
    assert re.search(r"decision: +allow with approvals", text)
    assert "danger zones: payment, delete, checkout-page, big-amount, built-in set" in text


def _denied_mission() -> dict[str, Any]:
    data = _spec()
    data["boundaries"]["allow_http"] = True  # with a declared secret: deny
    return data


def test_check_exits_2_on_deny_as_run_does(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(_write(tmp_path, _denied_mission()))], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "decision:         deny" in result.output
    assert "secret could travel in clear" in result.output


def test_run_refuses_a_deny_mission_with_exit_2(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    result = CliRunner().invoke(
        cli,
        ["run", str(_write(tmp_path, _denied_mission())), "--evidence-dir", str(evidence), "--approval", "deny"],
        env={"COLUMNS": "200", "PORTAL_PASSWORD": "s3cret-value"},
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "risk decision is deny" in said
    assert "a secret could travel in clear" in said
    assert not any(evidence.glob("*/records.jsonl"))  # nothing ran, no run folder


def test_check_is_deterministic(tmp_path: Path) -> None:
    mission = _write(tmp_path, _spec())
    first = CliRunner().invoke(cli, ["check", str(mission)], env={"COLUMNS": "200"}).output
    assert first == CliRunner().invoke(cli, ["check", str(mission)], env={"COLUMNS": "200"}).output


def test_secrets_to_loopback_over_http_are_not_denied() -> None:
    """The bundled demo: plain http to portal.localhost never crosses a network."""
    demo = Path(__file__).parents[2] / "missions" / "demo" / "expense-report.yaml"
    risk = assess(Mission.model_validate(yaml.safe_load(demo.read_text())))
    assert risk.decision == "allow with approvals", risk.reasons


def test_no_bundled_or_test_mission_is_denied() -> None:
    """`warden run` refuses deny missions: none of the repo's own missions may be one."""
    root = Path(__file__).parents[2]
    paths = [*root.glob("missions/**/*.yaml"), *root.glob("tests/runner/**/*.yaml"), *root.glob("benchmarks/*.yaml")]
    checked = 0
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue  # deliberately broken fixtures
        if not isinstance(data, dict) or "mission" not in data:
            continue
        try:
            mission = Mission.model_validate(data)
        except ValueError:
            continue  # deliberately invalid fixtures
        assert assess(mission).decision != "deny", path
        checked += 1
    assert checked >= 5
