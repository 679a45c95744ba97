"""Mission loading: every malformed mission is refused with file:line, key path and a human message."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kernel.errors import MissionInvalid, Problem
from missions.loader import LoadedMission, format_problems, load_mission
from missions.model import ACTION_KINDS

DATA = Path(__file__).parent / "data" / "missions"

# Lines 1-7; extra steps appended with `steps()` start on line 8 and are YAML index 1 ("step 2").
HEAD = """\
mission: m
version: 1
boundaries:
  allowed_domains: [portal.example.com]
  allowed_actions: [goto, click, fill, select, press, check, uncheck, hover, wait_for, screenshot, extract, assert_text]
steps:
  - goto: https://portal.example.com/
"""


def steps(*lines: str, tail: str = "") -> str:
    """The base mission plus step lines (each a `  - ...` line) and trailing top-level YAML."""
    return HEAD + "".join(line + "\n" for line in lines) + tail


def write(tmp_path: Path, content: str | bytes, name: str = "mission.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs: Any) -> list[Problem]:
    with pytest.raises(MissionInvalid) as info:
        load_mission(path, **kwargs)
    return info.value.problems


SECRET_BLOCK = "secrets:\n  PW: {env: PW_ENV, domains: [portal.example.com]}\n"  # secrets.PW.env: line of "PW:"

# (id, content, environ, expected line, expected path, message fragment, number of problems)
CASES: list[tuple[str, str | bytes, dict[str, str], int | None, str, str, int]] = [
    ("typo-top-level", HEAD.replace("version: 1\n", "version: 1\ndescripton: x\n"), {},
     3, "descripton", "unknown key 'descripton' (did you mean 'description'?)", 1),
    ("typo-nested", HEAD.replace("  allowed_domains: [portal.example.com]\n",
                                 "  allowed_domains: [portal.example.com]\n  alow_http: true\n"), {},
     5, "boundaries.alow_http", "unknown key 'alow_http' (did you mean 'allow_http'?)", 1),
    ("typo-instead-of-required", HEAD.replace("allowed_domains:", "allowed_domain:"), {},
     4, "boundaries.allowed_domain", "unknown key 'allowed_domain' (did you mean 'allowed_domains'?)", 2),
    ("typo-step-arg", steps('  - click: {selecter: "#a"}'), {},
     8, "steps.1.click.selecter", "step 2: unknown key 'selecter' (did you mean 'selector'?)", 1),
    ("duplicate-key", HEAD.replace("  allowed_domains: [portal.example.com]\n",
                                   "  allowed_domains: [portal.example.com]\n  allowed_domains: [evil.com]\n"), {},
     5, "boundaries.allowed_domains", "duplicate key 'allowed_domains' (first given on line 4)", 1),
    ("wrong-type-int", HEAD.replace("steps:\n", "  max_steps: lots\nsteps:\n"), {},
     6, "boundaries.max_steps", "expected an integer, got 'lots'", 1),
    ("wrong-type-bool-for-string", steps('  - fill: {selector: "#a", value: yes}'), {},
     8, "steps.1.fill.value", "(YAML reads yes as a boolean; quote it: \"yes\")", 1),
    ("wrong-type-list", HEAD.replace("[portal.example.com]", "portal.example.com"), {},
     4, "boundaries.allowed_domains", "expected a list, got 'portal.example.com'", 1),
    ("version-float", HEAD.replace("version: 1", "version: 1.10"), {},
     2, "version", "expected an integer or a string, got 1.1 (YAML reads 1.10 as a number; quote it", 1),
    ("two-targets", steps('  - click: {selector: "#a", text: Go}'), {},
     8, "steps.1.click", "step 2: give exactly one way to find the element, not selector and text", 1),
    ("no-target", steps("  - click: {exact: true}"), {},
     8, "steps.1.click", "step 2: a target is required", 1),
    ("unknown-action", steps("  - navigate: https://portal.example.com/"), {},
     8, "steps.1.navigate", "step 2: unknown action 'navigate' (actions: goto, click", 1),
    ("two-actions", steps('  - click: {selector: "#a"}', '    fill: {selector: "#b", value: x}'), {},
     8, "steps.1", "step 2: a step has exactly one action", 1),
    ("name-without-role", steps("  - click: {text: Go, name: Go}"), {},
     8, "steps.1.click", "'name' goes with 'role'", 1),
    ("step-not-a-mapping", steps("  - goto"), {},
     8, "steps.1", "step 2: expected a mapping with one action", 1),
    ("empty-steps", HEAD.replace("steps:\n  - goto: https://portal.example.com/\n", "steps: []\n"), {},
     6, "steps", "must not be empty", 1),
    ("missing-allowed-domains", HEAD.replace("  allowed_domains: [portal.example.com]\n", ""), {},
     3, "boundaries.allowed_domains", "missing required key 'allowed_domains'", 1),
    ("missing-top-level-key", HEAD.replace("version: 1\n", ""), {},
     1, "version", "missing required key 'version'", 1),
    ("bad-domain-entry", HEAD.replace("  allowed_domains: [portal.example.com]\n",
                                      "  allowed_domains:\n    - portal.example.com\n    - https://x.com/\n"), {},
     6, "boundaries.allowed_domains.1", "not a host pattern: 'https://x.com/'", 1),
    ("bad-slug", HEAD.replace("mission: m", "mission: Expense Report"), {},
     1, "mission", "'Expense Report' is not valid here: expected a lowercase id", 1),
    ("wait-for-two-keys", steps("  - wait_for: {text: Done, selector: .done}"), {},
     8, "steps.1.wait_for", "wait_for takes exactly one of", 1),
    ("select-value-and-label", steps('  - select: {selector: "#s", value: a, label: b}'), {},
     8, "steps.1.select", "give exactly one of 'value' or 'label'", 1),
    ("extract-without-as", steps("  - extract: {selector: .id}"), {},
     8, "steps.1.extract.as", "step 2: missing required key 'as'", 1),
    ("extract-python-name", steps("  - extract: {selector: .id, as_: x}"), {},
     8, "steps.1.extract.as_", "unknown key 'as_' (did you mean 'as'?)", 1),
    ("literal-typo", steps(tail="pii:\n  on_page: recrod\n"), {},
     9, "pii.on_page", "expected one of record, approve, block; got 'recrod' (did you mean 'record'?)", 1),
    ("number-out-of-range", steps(tail="pii:\n  threshold: 2\n"), {},
     9, "pii.threshold", "must be at most 1", 1),
    ("bool-is-not-a-number", HEAD.replace("steps:\n", "  timeout: yes\nsteps:\n"), {},
     6, "boundaries.timeout", "expected a number, got the boolean true", 1),
    ("bad-secret-name", steps(tail="secrets:\n  1pw: {env: PW_ENV, domains: [portal.example.com]}\n"), {},
     9, "secrets.1pw", "'1pw' is not valid here", 1),
    ("undefined-var", steps('  - fill: {selector: "#a", value: "${vars.who}"}'), {},
     8, "steps.1.fill.value", "step 2: undefined variable ${vars.who}: pass --var who=VALUE", 1),
    ("var-before-extract", steps('  - assert_text: {text: "${vars.id}"}', "  - extract: {selector: .id, as: id}"), {},
     8, "steps.1.assert_text.text", "step 2: ${vars.id} is used before it is extracted (later, in step 3)", 1),
    ("var-in-its-own-extract", steps('  - extract: {selector: "#${vars.id}", as: id}'), {},
     8, "steps.1.extract.selector", "used before it is extracted (in the same step)", 1),
    ("undeclared-secret", steps('  - fill: {selector: "#a", value: "${secrets.PW}"}'), {},
     8, "steps.1.fill.value", "step 2: undeclared secret ${secrets.PW}: declare it under 'secrets:'", 1),
    ("missing-secret-env", steps('  - fill: {selector: "#a", value: "${secrets.PW}"}', tail=SECRET_BLOCK), {},
     10, "secrets.PW.env", "secret 'PW': environment variable PW_ENV is not set", 1),
    ("empty-secret-env", steps(tail=SECRET_BLOCK), {"PW_ENV": ""},
     9, "secrets.PW.env", "environment variable PW_ENV is empty", 1),
    ("secret-in-goto-host", steps('  - goto: "https://${secrets.PW}.example.com/"', tail=SECRET_BLOCK),
     {"PW_ENV": "x"}, 8, "steps.1.goto", "a secret may not be part of a goto URL's host", 1),
    ("unknown-namespace", steps('  - fill: {selector: "#a", value: "${env.HOME}"}'), {},
     8, "steps.1.fill.value", "unknown namespace 'env' in ${env.HOME}", 1),
    ("unterminated-reference", steps('  - fill: {selector: "#a", value: "${vars.x"}'), {},
     8, "steps.1.fill.value", "unterminated reference", 1),
    ("action-not-allowed", HEAD.replace("allowed_actions: [goto, click, fill, select, press, check, uncheck, hover, "
                                        "wait_for, screenshot, extract, assert_text]", "allowed_actions: [goto]")
     + '  - click: {selector: "#a"}\n', {},
     8, "steps.1.click", "step 2: 'click' is not in boundaries.allowed_actions", 1),
    ("unknown-action-in-allowlist", HEAD.replace("allowed_actions: [goto, click,", "allowed_actions: [goto, clik,"),
     {}, 5, "boundaries.allowed_actions.1", "got 'clik' (did you mean 'click'?)", 1),
    ("yaml-syntax-error", steps('  - click: {selector: "#a"', "  - fill: x"), {},
     9, "", "YAML syntax error: while parsing a flow mapping expected ',' or '}'", 1),
    ("yaml-bad-indentation", "mission: m\nversion: 1\n  boundaries: x\n", {},
     3, "", "YAML syntax error: mapping values are not allowed here", 1),
    ("tabs", HEAD.replace("  allowed_actions:", "\tallowed_actions:"), {},
     5, "", "tabs cannot indent YAML: use spaces", 1),
    ("top-level-list", "- goto: https://portal.example.com/\n", {},
     1, "", "the top level must be a mapping", 1),
    ("top-level-scalar", "# a comment\njust text\n", {},
     2, "", "not a single value", 1),
    ("empty-file", "", {}, 1, "", "the file is empty", 1),
    ("comments-only", "# nothing here\n\n", {}, 1, "", "the file is empty", 1),
    ("non-utf8", b"mission: m\nversion: 1\ndescription: caf\xe9\n", {},
     3, "", "not UTF-8 text (byte 0xe9", 1),
    ("nul-character", steps(tail="description: a\x00b\n"), {},
     8, "", "special characters are not allowed (character U+0000)", 1),
    ("non-string-key", "? [a, b]\n: c\n" + HEAD, {},
     1, "", "a key must be plain text", 1),
    ("unsupported-tag", steps(tail="description: !!binary aGVsbG8=\n"), {},
     8, "description", "unsupported YAML tag", 1),
    ("recursive-alias", steps(tail="owner: &a [*a]\n"), {},
     8, "owner.0", "an alias refers to itself", 2),
    ("two-documents", HEAD + "---\nmission: n\n", {},
     8, "", "expected a single document", 1),
    ("billion-laughs", "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{k}: &{k} [{', '.join(['*' + p] * 10)}]\n" for p, k in zip("abcde", "bcdef", strict=True)), {},
     1, "", "values after expanding aliases", 1),
]


@pytest.mark.parametrize(
    ("content", "environ", "line", "key_path", "fragment", "count"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_malformed_mission_is_located(
    tmp_path: Path,
    content: str | bytes,
    environ: dict[str, str],
    line: int | None,
    key_path: str,
    fragment: str,
    count: int,
) -> None:
    path = write(tmp_path, content)
    problems = problems_of(path, environ=environ)
    listing = format_problems(problems)
    matching = [p for p in problems if p.line == line and p.path == key_path and fragment in p.message]
    assert matching, f"no problem at line {line} [{key_path}] containing {fragment!r} in:\n{listing}"
    assert len(problems) == count, listing
    assert all(p.file == str(path) for p in problems)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    (problem,) = problems_of(missing)
    assert (problem.line, problem.path) == (None, "")
    assert format_problems([problem]) == f"{missing}: mission file not found"

    (problem,) = problems_of(tmp_path)
    assert "is a directory" in problem.message


def test_several_schema_problems_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    text = (
        "mission: Bad Slug\n"                                   # 1
        "version: 1\n"                                          # 2
        "owner: ops\n"                                          # 3
        "boundaries:\n"                                         # 4
        "  allowed_domains: [ok.example.com, 'http://x/']\n"   # 5
        "  allowed_actions: [goto, click]\n"                    # 6
        "danger_zone: []\n"                                     # 7
        "steps:\n"                                              # 8
        "  - goto: https://ok.example.com/\n"                   # 9
        "  - click: {selector: '#a', text: b}\n"                # 10
        "  - click: {}\n"                                       # 11
    )
    problems = problems_of(write(tmp_path, text))
    assert [(p.line, p.path) for p in problems] == [
        (1, "mission"),
        (5, "boundaries.allowed_domains.1"),
        (7, "danger_zone"),
        (10, "steps.1.click"),
        (11, "steps.2.click"),
    ]
    assert "did you mean 'danger_zones'?" in problems[2].message
    assert problems[3].message.startswith("step 2: ")
    assert problems[4].message.startswith("step 3: ")


def test_several_semantic_problems_reported_at_once(tmp_path: Path) -> None:
    text = steps(
        '  - fill: {selector: "#a", value: "${vars.a}"}',          # 8
        '  - fill: {selector: "${vars.b}", value: "${secrets.X}"}',  # 9
        tail="secrets:\n  PW: {env: PW_ENV, domains: [portal.example.com]}\n",  # 10, 11
    ).replace("allowed_actions: [goto, click, fill,", "allowed_actions: [goto, click,")
    problems = problems_of(write(tmp_path, text), environ={})
    got = [(p.line, p.path, p.message.split(":")[0]) for p in problems]
    assert got == [
        (8, "steps.1.fill", "step 2"),
        (8, "steps.1.fill.value", "step 2"),
        (9, "steps.2.fill", "step 3"),
        (9, "steps.2.fill.selector", "step 3"),
        (9, "steps.2.fill.value", "step 3"),
        (11, "secrets.PW.env", "secret 'PW'"),
    ]


# A mission with schema and semantic problems: all of them in one go (a missing required key, a
# typo and an invalid step do not hide a goto off the allowlist, an undeclared secret, a kind that
# is not allowed, or a variable used before it is extracted).
MIXED = (
    "version: 1\n"                                                    # 1  (mission: missing)
    "boundaries:\n"                                                   # 2
    "  allowed_domains: [allowed.localhost]\n"                        # 3
    "  allowed_actions: [goto, fill, extract]\n"                      # 4
    "steps:\n"                                                        # 5
    "  - goto: http://evil.localhost:8080/collect\n"                  # 6
    "  - click: {selector: '#a'}\n"                                   # 7
    "  - fill: {selector: '#b', value: '${secrets.TOKEN}'}\n"         # 8
    "  - fill: {selector: '#c', valeu: x}\n"                          # 9
    "  - fill: {selector: '#d', value: '${vars.later}'}\n"            # 10
    "  - extract: {selector: '#e', as: later}\n"                      # 11
)
MIXED_EXPECTED = [
    (1, "mission", "missing required key 'mission'"),
    (6, "steps.0.goto", "step 1 refused before the run: evil.localhost is not in allowed_domains"),
    (7, "steps.1.click", "step 2: 'click' is not in boundaries.allowed_actions"),
    (8, "steps.2.fill.value", "step 3: undeclared secret ${secrets.TOKEN}"),
    (9, "steps.3.fill.valeu", "step 4: unknown key 'valeu'"),
    (9, "steps.3.fill.value", "step 4: missing required key 'value'"),
    (10, "steps.4.fill.value", "step 5: ${vars.later} is used before it is extracted (later, in step 6)"),
]


def test_schema_and_semantic_problems_reported_together(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MIXED), environ={})
    listing = format_problems(problems)
    assert len(problems) == len(MIXED_EXPECTED), listing
    for (line, path, fragment), p in zip(MIXED_EXPECTED, problems, strict=True):
        assert (p.line, p.path) == (line, path), listing
        assert fragment in p.message, listing


@pytest.mark.parametrize(
    ("goto", "allowed"),
    [
        ("https://allowed.localhost/", "allowed.localhost"),
        ("https://ALLOWED.localhost./x", "allowed.localhost"),
        ("https://a.cdn.localhost/", "'*.cdn.localhost'"),
        ("https://allowed.localhost:9/", "'allowed.localhost:8080'"),  # ports: left to the guard
        ("https://xn--bcher-kva.localhost/", "'bücher.localhost'"),  # IDN: left to the guard
        ("https://${vars.host}/", "allowed.localhost"),  # known at run time: checked then
        ("https://allowed.localhost\\@evil.localhost/", "allowed.localhost"),  # a browser reads allowed.localhost
        ("https://evil.localhost@allowed.localhost/", "allowed.localhost"),  # user info: left to the guard
    ],
)
def test_partial_goto_check_never_refuses_what_the_guard_may_allow(tmp_path: Path, goto: str, allowed: str) -> None:
    text = MIXED.replace("http://evil.localhost:8080/collect", f"'{goto}'").replace(
        "[allowed.localhost]", f"[{allowed}]")
    problems = problems_of(write(tmp_path, text), environ={}, cli_vars={"host": "allowed.localhost"})
    assert not [p for p in problems if p.path == "steps.0.goto"], format_problems(problems)
    assert problems[0].path == "mission"  # the schema problem is still there


@pytest.mark.parametrize(
    ("goto", "host"),
    [
        ("https://allowed.localhost.evil.localhost/", "allowed.localhost.evil.localhost"),  # suffix spoof
        ("https://evilallowed.localhost/", "evilallowed.localhost"),  # no dot boundary
        ("HTTPS://EVIL.LOCALHOST:8080/", "evil.localhost"),  # case and port do not hide the host
        ("https://sub.allowed.localhost/", "sub.allowed.localhost"),  # a plain entry is not a wildcard
    ],
)
def test_partial_goto_check_names_a_host_off_the_allowlist(tmp_path: Path, goto: str, host: str) -> None:
    problems = problems_of(write(tmp_path, MIXED.replace("http://evil.localhost:8080/collect", f"'{goto}'")),
                           environ={})
    (hit,) = [p for p in problems if p.path == "steps.0.goto"]
    assert (hit.line, hit.message) == (6, f"step 1 refused before the run: {host} is not in allowed_domains")


def test_a_valid_mission_leaves_gotos_to_the_preflight_guard(tmp_path: Path) -> None:
    """The literal goto check is a second reading for broken files only; a valid one loads as before."""
    loaded = load_mission(write(tmp_path, HEAD.replace("https://portal.example.com/", "https://evil.example/")),
                          environ={})
    goto = loaded.mission.steps[0].goto
    assert goto is not None and goto.url == "https://evil.example/"


def test_format_problems_lines(tmp_path: Path) -> None:
    path = write(tmp_path, steps("  - click: {selecter: '#a'}"))
    out = format_problems(problems_of(path))
    assert out == f"{path}:8: [steps.1.click.selecter] step 2: unknown key 'selecter' (did you mean 'selector'?)"


# ----------------------------------------------------------------------------- valid missions


def test_spec_example_is_a_golden_valid_mission() -> None:
    path = DATA / "spec_example.yaml"
    loaded = load_mission(path, environ={"PORTAL_PASSWORD": "hunter2-secret"})
    m = loaded.mission
    assert m.mission == "expense-report"
    assert m.version == 3
    assert [s.kind for s in m.steps] == [
        "goto", "fill", "fill", "click", "fill", "click", "wait_for", "extract", "screenshot", "assert_text", "click",
    ]
    assert m.boundaries.allowed_domains == ["portal.example.com", "*.cdn.example.com"]
    assert m.steps[-1].needs_approval
    assert loaded.secret_values == {"PORTAL_PASSWORD": "hunter2-secret"}
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.raw_text == path.read_text(encoding="utf-8")
    assert loaded.lines["mission"] == 1
    assert loaded.lines["boundaries.allowed_domains.1"] == 11
    assert loaded.lines["secrets.PORTAL_PASSWORD.env"] == 45
    assert loaded.lines["steps.10.click"] == 58
    assert loaded.line_of("steps.10.click.nonexistent") == 58
    assert "hunter2-secret" not in repr(loaded)


def test_spec_example_without_the_secret_env_names_the_variable() -> None:
    (problem,) = problems_of(DATA / "spec_example.yaml", environ={})
    assert (problem.line, problem.path) == (45, "secrets.PORTAL_PASSWORD.env")
    assert "PORTAL_PASSWORD is not set" in problem.message


def test_every_action_kind_and_target_form_loads() -> None:
    loaded = load_mission(DATA / "all_actions.yaml", cli_vars={"start": "home"}, environ={})
    m = loaded.mission
    assert {s.kind for s in m.steps} == set(ACTION_KINDS)
    targets = {next(iter(s.args.target())) for s in m.steps if hasattr(s.args, "target") and s.args.target()}
    assert {"selector", "text", "role", "label", "placeholder", "test_id"} <= targets
    sel_by_value, sel_by_label = (s.select for s in m.steps if s.select is not None)
    assert sel_by_value is not None
    assert sel_by_label is not None
    assert (sel_by_value.label, sel_by_value.value) == ("Country", "DE")
    assert (sel_by_label.selector, sel_by_label.option_label) == ("#size", "Large")
    last = m.steps[-1]
    assert last.needs_approval
    assert last.effective_timeout == 5
    assert loaded.cli_vars == {"start": "home"}


def test_all_actions_needs_its_cli_var(tmp_path: Path) -> None:
    (problem,) = problems_of(DATA / "all_actions.yaml", environ={})
    assert (problem.line, problem.path) == (9, "steps.1.goto.url")


@pytest.mark.parametrize("kind", ACTION_KINDS)
def test_each_action_kind_alone(tmp_path: Path, kind: str) -> None:
    step = {
        "goto": "  - goto: https://portal.example.com/a",
        "click": "  - click: {selector: '#a'}",
        "hover": "  - hover: {text: Menu}",
        "check": "  - check: {label: Agree}",
        "uncheck": "  - uncheck: {test_id: news}",
        "fill": "  - fill: {placeholder: Name, value: Ada}",
        "select": "  - select: {label: Size, value: L}",
        "press": "  - press: {key: Enter, role: textbox, name: Search}",
        "wait_for": "  - wait_for: {load_state: load}",
        "screenshot": "  - screenshot: {name: shot}",
        "extract": "  - extract: {selector: '#id', as: id}",
        "assert_text": "  - assert_text: {text: Done}",
    }[kind]
    loaded = load_mission(write(tmp_path, steps(step)), environ={})
    assert loaded.mission.steps[1].kind == kind


def test_yaml11_keys_stay_text(tmp_path: Path) -> None:
    """PyYAML reads a key `on:` as True; a mission key is the text written."""
    text = steps(
        '  - fill: {selector: "#a", value: "${secrets.on}"}',
        '  - fill: {selector: "#b", value: "${secrets.yes}"}',
        tail="secrets:\n  on: {env: ON_ENV, domains: [portal.example.com]}\n"
        "  yes: {env: YES_ENV, domains: [portal.example.com]}\n",
    )
    loaded = load_mission(write(tmp_path, text), environ={"ON_ENV": "1", "YES_ENV": "2"})
    assert set(loaded.mission.secrets) == {"on", "yes"}
    assert loaded.secret_values == {"on": "1", "yes": "2"}

    (problem,) = problems_of(write(tmp_path, steps(tail="on: push\n")))
    assert (problem.line, problem.path) == (8, "on")
    assert problem.message.startswith("unknown key 'on'")


def test_yaml11_values_for_booleans_still_work(tmp_path: Path) -> None:
    loaded = load_mission(write(tmp_path, steps("  - click: {selector: '#a', approve: yes}")), environ={})
    assert loaded.mission.steps[1].needs_approval


def test_anchors_aliases_and_merge_keys_resolve(tmp_path: Path) -> None:
    text = steps(
        "  - click: &base {selector: '#a', timeout: 2}",
        "  - click: *base",
        "  - click:",
        "      <<: *base",
        "      timeout: 9",
    )
    loaded = load_mission(write(tmp_path, text), environ={})
    timeouts = [s.effective_timeout for s in loaded.mission.steps[1:]]
    assert timeouts == [2, 2, 9]


def test_version_may_be_text_or_int(tmp_path: Path) -> None:
    loaded = load_mission(write(tmp_path, HEAD.replace("version: 1", "version: 2024-05-01")), environ={})
    assert loaded.mission.version == "2024-05-01"  # a YAML timestamp stays the text written


def test_cli_var_defines_a_variable(tmp_path: Path) -> None:
    path = write(tmp_path, steps('  - fill: {selector: "#a", value: "${vars.who}"}'))
    loaded = load_mission(path, cli_vars={"who": "ada"}, environ={})
    assert loaded.mission.steps[1].fill is not None
    assert loaded.mission.steps[1].fill.value == "${vars.who}"  # interpolated at run time, not here


def test_escaped_reference_is_not_a_variable(tmp_path: Path) -> None:
    loaded = load_mission(write(tmp_path, steps('  - assert_text: {text: "costs $${vars.price}"}')), environ={})
    step = loaded.mission.steps[1].assert_text
    assert step is not None and step.text == "costs $${vars.price}"  # no undefined-variable problem, text kept
    assert loaded.cli_vars == {}


def test_bom_is_accepted(tmp_path: Path) -> None:
    loaded = load_mission(write(tmp_path, "\ufeff".encode() + HEAD.encode()), environ={})
    assert loaded.mission.mission == "m"


def test_check_mode_does_not_require_secret_environment(tmp_path: Path) -> None:
    path = write(tmp_path, steps('  - fill: {selector: "#a", value: "${secrets.PW}"}', tail=SECRET_BLOCK))
    loaded = load_mission(path, environ={}, require_secrets=False)
    assert loaded.secret_values == {}
    (problem,) = problems_of(path, environ={"PW_ENV": ""}, require_secrets=False)
    assert "PW_ENV is empty" in problem.message  # an empty secret would break redaction: always refused


def test_default_environ_is_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_ENV", "from-os")
    loaded = load_mission(write(tmp_path, steps(tail=SECRET_BLOCK)))
    assert loaded.secret_values == {"PW": "from-os"}


def test_loaded_mission_is_frozen(tmp_path: Path) -> None:
    loaded = load_mission(write(tmp_path, HEAD), environ={})
    assert isinstance(loaded, LoadedMission)
    with pytest.raises(AttributeError):
        loaded.sha256 = "x"  # type: ignore[misc]


# ----------------------------------------------------------------------------- secrets never leak

_SECRET_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=10, max_size=40
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_SECRET_TEXT)
def test_secret_values_never_appear_in_problem_output(tmp_path: Path, value: str) -> None:
    text = steps(
        '  - fill: {selector: "#a", value: "${secrets.PW}"}',       # resolved from the environment
        '  - fill: {selector: "#b", value: "${secrets.UNDECLARED}"}',
        '  - fill: {selector: "#c", value: "${secrets.GONE}"}',
        tail="secrets:\n  PW: {env: PW_ENV, domains: [portal.example.com]}\n"
        "  GONE: {env: GONE_ENV, domains: [portal.example.com]}\n",
    )
    path = write(tmp_path, text)
    assume(value not in text and value not in str(path))
    environ = {"PW_ENV": value, "UNDECLARED": value, "GONE": value}  # a value under every plausible name
    problems = problems_of(path, environ=environ)
    output = format_problems(problems)
    assert "UNDECLARED" in output
    assert "GONE_ENV is not set" in output
    assert value not in output
    assert all(value not in repr(p) for p in problems)
