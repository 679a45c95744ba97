"""The ``warden`` command (SPEC §3). Thin: parse, call, map errors to exit codes; no tracebacks for users.

The exit codes mean one thing whatever the command (``runner/exit_codes.py``, SPEC §3's table).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import click

from kernel.errors import MissionInvalid, UsageError, WardenError
from runner.cli_lazy import LazyGroup
from runner.cli_options import (
    approval_mode,
    db_option,
    deferred_recovery,
    err,
    escape,
    evidence_dir_option,
    no_recovery,
    parse_vars,
    recovery_for,
    reporter,
)
from runner.exit_codes import ExitCode

_parse_vars = parse_vars  # runner.fleet.cli reads it from here


def _fail(exc: WardenError) -> NoReturn:
    if isinstance(exc, MissionInvalid):
        for p in exc.problems:
            err.print(f"[red]error[/] {escape(str(p))}")
        err.print(f"[red]{len(exc.problems)} problem(s); nothing was executed.[/]")
    else:
        err.print(f"[red]error:[/] {escape(str(exc))}")
    sys.exit(exc.exit_code)


class _WardenGroup(LazyGroup):
    """Maps every ``WardenError`` a command raises to its message and exit code, in one place,
    and Ctrl-C outside a run's evidence (a run closes its own, exit 130) to exit 130 as well.
    The approvals queue and the fleet (docs/fleet.md) are imported only when named."""

    lazy_commands: ClassVar[Mapping[str, str]] = {
        "approvals": "runner.cli_approvals:approvals", "submit": "runner.fleet.cli:submit",
        "worker": "runner.fleet.cli:worker", "jobs": "runner.fleet.cli:jobs",
    }

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WardenError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            err.print("[red]interrupted[/]")
            sys.exit(ExitCode.INTERRUPTED)


@click.group(cls=_WardenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="warden")
def cli() -> None:
    """Warden: run browser missions in a sandboxed Chromium, with guardrails and verifiable evidence."""


def main() -> None:
    """Entry point: user errors were mapped to exit codes already; anything else is a bug, said plainly."""
    try:
        cli()
    except Exception as exc:
        if os.environ.get("WARDEN_DEBUG"):
            raise
        err.print(f"[red]internal error:[/] {type(exc).__name__} (set WARDEN_DEBUG=1 for details)")
        sys.exit(ExitCode.NEGATIVE)


@cli.command()
@click.argument("mission", type=click.Path(path_type=Path))
@evidence_dir_option
@deferred_recovery  # done while Chromium launches, before this run's folder exists
@click.option(
    "--approval",
    type=click.Choice(["prompt", "deny", "queue"]),
    default=None,
    help="How approval requests are answered (default: prompt with a terminal, else deny).",
)
@click.option("--approver", default=None, help="Name of the approver at the terminal (recorded beside the OS user).")
@click.option("--headed", is_flag=True, help="Show the browser window (needs a display).")
@db_option
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", help="Set ${vars.KEY}.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; the exit code and the evidence speak.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event on stdout.")
def run(
    mission: Path,
    evidence_dir: Path,
    approval: str | None,
    approver: str | None,
    headed: bool,
    db_url: str | None,
    variables: tuple[str, ...],
    quiet: bool,
    as_json: bool,
) -> None:
    """Run MISSION.yaml and leave an evidence folder."""
    from runner.browser.driver_start import early_driver

    with early_driver():  # Playwright's driver boots beside the imports and the mission's checks
        from runner.run import RunOptions, run_mission

        opts = RunOptions(
            mission_path=mission,
            evidence_dir=evidence_dir,
            cli_vars=parse_vars(variables),
            db_url=db_url,
            headed=headed,
            approval=approval_mode(approval),
            approver=approver,
            recover=recovery_for(evidence_dir, db_url, quiet=quiet or as_json),
        )
        result = run_mission(opts, reporter(quiet, as_json))
    sys.exit(result.exit_code)


@cli.command()
@click.argument("mission", type=click.Path(path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", help="Set ${vars.KEY}.")
@click.option("--mcp", "for_mcp", is_flag=True, help="Check it for `warden mcp` (steps may be empty).")
def check(mission: Path, variables: tuple[str, ...], for_mcp: bool) -> None:
    """Validate MISSION.yaml, print its shape, risk score and decision; exit 0 it may run, 2 invalid or deny."""
    from rich.console import Console

    from missions.loader import load_mission
    from runner.preflight import preflight, refuse_denied_risk
    from runner.report_check import print_shape

    loaded = load_mission(
        mission, cli_vars=parse_vars(variables), environ=os.environ, require_secrets=False, require_vars=False,
        require_steps=not for_mcp,
    )
    preflight(loaded)
    print_shape(loaded, Console(highlight=False))
    refuse_denied_risk(loaded)  # a deny decision is exit 2, as `warden run` refuses it (SPEC §3)


@cli.command()
@evidence_dir_option
@click.option(
    "--approval",
    type=click.Choice(["prompt", "deny", "queue"]),
    default=None,
    help="Who answers the demo's payment approval (default: prompt with a terminal, else deny).",
)
@click.option("--approver", default=None, help="Name of the approver at the terminal (recorded beside the OS user).")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def demo(evidence_dir: Path, approval: str | None, approver: str | None, quiet: bool, as_json: bool) -> None:
    """Serve the bundled demo site and run the demo mission on it.

    The "Submit payment" click is a danger zone: with a terminal you are asked to approve it (exit 0
    when approved and the mission completes); without one (CI) it is denied and recorded (exit 3).
    Either way the evidence folder verifies.
    """
    from runner.demo import run_demo

    code = run_demo(evidence_dir, reporter(quiet, as_json), approval=approval_mode(approval), approver=approver)
    sys.exit(code)


@cli.group()
def evidence() -> None:
    """List, show and verify evidence."""


@evidence.command("list")
@evidence_dir_option
@db_option
@no_recovery  # read-only: no crash recovery, no file changed
def evidence_list(evidence_dir: Path, db_url: str | None) -> None:
    """List the runs in the evidence dir."""
    from runner.evidence_cli import list_runs

    list_runs(evidence_dir, db_url)


@evidence.command("show")
@click.argument("run_ref", metavar="RUN")
@evidence_dir_option
@db_option
@no_recovery  # read-only: no crash recovery, no file changed
def evidence_show(run_ref: str, evidence_dir: Path, db_url: str | None) -> None:
    """Show a run as a readable timeline."""
    from runner.evidence_cli import show_run

    show_run(run_ref, evidence_dir, db_url)


@evidence.command("verify")
@click.argument("run_ref", metavar="RUN", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Verify every run in the evidence dir (exit 1 if any fails).")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Ed25519 public key PEM: also check each run's signature (see `warden evidence keygen`).",
)
@evidence_dir_option
@db_option
@no_recovery
def evidence_verify(
    run_ref: str | None, all_runs: bool, public_key: Path | None, evidence_dir: Path, db_url: str | None
) -> None:
    """Recompute the hash chain and attachment hashes: exit 0 intact, 1 altered. Read-only."""
    from runner.evidence_cli import verify, verify_all

    if all_runs == (run_ref is not None):
        raise UsageError("give either RUN or --all")
    code = (
        verify_all(evidence_dir, db_url, public_key)
        if all_runs
        else verify(str(run_ref), evidence_dir, db_url, public_key)
    )
    sys.exit(code)


@evidence.command("recover")
@click.argument("run_ref", metavar="RUN", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Every run marked running whose process is gone.")
@evidence_dir_option
@db_option
@no_recovery  # it is the recovery, done once below
def evidence_recover(run_ref: str | None, all_runs: bool, evidence_dir: Path, db_url: str | None) -> None:
    """Close runs whose process died (crash recovery): marked interrupted, signed if WARDEN_SIGNING_KEY is set."""
    from runner.evidence_cli import recover

    if all_runs and run_ref is not None:
        raise UsageError("give RUN or --all, not both")
    sys.exit(recover(run_ref, evidence_dir, db_url))


@evidence.command("attest")
@click.argument("run_ref", metavar="RUN")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (default: attestation.dsse.json in the run folder).")
@evidence_dir_option
@db_option
@no_recovery
def evidence_attest(run_ref: str, output: Path | None, evidence_dir: Path, db_url: str | None) -> None:
    """Write an in-toto Statement v1 of the run in a DSSE envelope, signed with WARDEN_SIGNING_KEY."""
    from runner.evidence_cli import attest

    attest(run_ref, evidence_dir, db_url, output)


@evidence.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def evidence_keygen(path: Path) -> None:
    """Write an Ed25519 keypair: PATH (private, 0600) and PATH.pub; set WARDEN_SIGNING_KEY=PATH to sign runs."""
    from evidence.signing import keygen

    private, public = keygen(path)
    click.echo(f"private key: {private} (keep it away from the evidence store)\npublic key:  {public}")


@evidence.command("query")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Record type (repeatable), e.g. approval_record.")
@click.option("--run", "run_ref", default=None, metavar="RUN", help="One run (id or unique prefix).")
@click.option("--mission", default=None, help="Mission id.")
@click.option("--since", default=None, help="From this time (RFC 3339) or date (YYYY-MM-DD), inclusive.")
@click.option("--until", default=None, help="Up to this time or date (a date includes its whole day).")
@click.option("--outcome", default=None, help="The run's outcome: completed, stopped, failed, interrupted, ...")
@click.option("--decision", default=None, help="allow | deny | require_approval | approved | denied | expired.")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Record field or dotted path equals VALUE (repeatable), e.g. subject.host=evil.localhost.",
)
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most N records (oldest first).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table", show_default=True)
@evidence_dir_option
@db_option
@no_recovery  # read-only: no crash recovery, no file changed
def evidence_query(
    types: tuple[str, ...],
    run_ref: str | None,
    mission: str | None,
    since: str | None,
    until: str | None,
    outcome: str | None,
    decision: str | None,
    where: tuple[str, ...],
    limit: int | None,
    fmt: str,
    evidence_dir: Path,
    db_url: str | None,
) -> None:
    """Filter records across runs (from the index); records are shown as written (already redacted)."""
    from runner.evidence_cli import query

    query(
        evidence_dir,
        db_url,
        types=types,
        run_ref=run_ref,
        mission=mission,
        since=since,
        until=until,
        outcome=outcome,
        decision=decision,
        where=where,
        limit=limit,
        fmt=fmt,
    )


@evidence.command("reindex")
@click.option("--clear", is_flag=True, help="Empty the index first (drops runs whose folders are gone).")
@click.option("--force", is_flag=True, help="Also overwrite runs whose indexed chain disagrees with their folder.")
@evidence_dir_option
@db_option
def evidence_reindex(clear: bool, force: bool, evidence_dir: Path, db_url: str | None) -> None:
    """Rebuild the index from the run folders; exit 1 if a folder failed to parse or conflicts."""
    from runner.evidence_cli import reindex

    code = reindex(evidence_dir, db_url, clear=clear, force=force)
    sys.exit(code)


@evidence.command("export")
@click.argument("run_ref", metavar="RUN")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "ocsf"]), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
@evidence_dir_option
@db_option
@no_recovery  # read-only: no crash recovery, no file changed
def evidence_export(run_ref: str, fmt: str, output: Path | None, evidence_dir: Path, db_url: str | None) -> None:
    """Export a run's records: as written (jsonl) or as OCSF events (ocsf) for a SIEM."""
    from runner.evidence_cli import export

    export(run_ref, evidence_dir, db_url, fmt, output)


@evidence.command("report")
@click.argument("run_ref", metavar="RUN")
@evidence_dir_option
@db_option
def evidence_report(run_ref: str, evidence_dir: Path, db_url: str | None) -> None:
    """(Re)write the run's self-contained report.html (with the verify verdict of now)."""
    from runner.evidence_cli import report

    report(run_ref, evidence_dir, db_url)


@cli.command()
@click.argument("mission", type=click.Path(path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", help="Set ${vars.KEY}.")
@click.option(
    "--approval",
    type=click.Choice(["queue", "deny"]),
    default="deny",
    show_default=True,
    help="Danger-zone calls wait for `warden approvals approve|deny ID` (queue), or are refused (deny).",
)
@click.option("--approver", default=None, help="Name recorded beside the OS user for approvals.")
@click.option("--http", "http_port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio (0: any free port).")
@evidence_dir_option
@db_option
def mcp(
    mission: Path, variables: tuple[str, ...], approval: str, approver: str | None, http_port: int | None,
    evidence_dir: Path, db_url: str | None,
) -> None:
    """Serve MISSION.yaml's guarded browser to an MCP client on stdio (docs/mcp.md); one session, one run."""
    from runner.agent_session.live import SessionOptions
    from runner.mcp.server import serve_stdio

    opts = SessionOptions(
        mission_path=mission, evidence_dir=evidence_dir, cli_vars=parse_vars(variables), db_url=db_url,
        approval="queue" if approval == "queue" else "deny", approver=approver, started_by="warden mcp",
    )
    if http_port is not None:
        from runner.mcp.http import serve_http

        sys.exit(serve_http(opts, http_port))
    sys.exit(serve_stdio(opts))


if __name__ == "__main__":  # pragma: no cover
    main()
