"""The ``warden`` command (SPEC §3). Thin: parse, call, map errors to exit codes; no tracebacks for users."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from runner.errors import MissionInvalid, UsageError, WardenError

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True, highlight=False)


def _evidence_dir_option(fn: F) -> F:
    return click.option(
        "--evidence-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("WARDEN_EVIDENCE_DIR", "warden-evidence"),
        show_default="./warden-evidence",
        help="Evidence folder (env WARDEN_EVIDENCE_DIR).",
    )(fn)


def _db_option(fn: F) -> F:
    return click.option("--db", "db_url", default=None, help="SQLAlchemy URL of the index (default DIR/warden.db).")(fn)


def _fail(exc: WardenError) -> NoReturn:
    if isinstance(exc, MissionInvalid):
        for p in exc.problems:
            err.print(f"[red]error[/] {click.style('', reset=False)}{_esc(str(p))}")
        err.print(f"[red]{len(exc.problems)} problem(s); nothing was executed.[/]")
    else:
        err.print(f"[red]error:[/] {_esc(str(exc))}")
    sys.exit(exc.exit_code)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--var expects KEY=VALUE with KEY a name, got {pair.split('=')[0]!r}")
        out[key] = value
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
        sys.exit(1)


@cli.command()
@click.argument("mission", type=click.Path(path_type=Path))
@_evidence_dir_option
@click.option(
    "--approval",
    type=click.Choice(["prompt", "deny", "queue"]),
    default=None,
    help="How approval requests are answered (default: prompt with a terminal, else deny).",
)
@click.option("--approver", default=None, help="Name of the approver at the terminal (recorded beside the OS user).")
@click.option("--headed", is_flag=True, help="Show the browser window (needs a display).")
@_db_option
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
    from runner.run import RunOptions, run_mission

    try:
        opts = RunOptions(
            mission_path=mission,
            evidence_dir=evidence_dir,
            cli_vars=_parse_vars(variables),
            db_url=db_url,
            headed=headed,
        )
        result = run_mission(opts, _reporter(quiet, as_json))
    except WardenError as exc:
        _fail(exc)
    sys.exit(result.exit_code)


def _reporter(quiet: bool, as_json: bool) -> Any:
    from runner.progress import JsonReporter, QuietReporter, RichReporter

    if as_json:
        return JsonReporter()
    if quiet:
        return QuietReporter()
    return RichReporter()


@cli.command()
@click.argument("mission", type=click.Path(path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", help="Set ${vars.KEY}.")
def check(mission: Path, variables: tuple[str, ...]) -> None:
    """Validate MISSION.yaml and print its shape; exit 0 valid, 2 invalid."""
    from runner.mission.loader import load_mission
    from runner.report_check import print_shape
    from runner.run import preflight

    try:
        loaded = load_mission(mission, cli_vars=_parse_vars(variables), environ=os.environ, require_secrets=False)
        preflight(loaded)
    except WardenError as exc:
        _fail(exc)
    print_shape(loaded, Console(highlight=False))


@cli.command()
@_evidence_dir_option
@click.option("--quiet", "-q", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def demo(evidence_dir: Path, quiet: bool, as_json: bool) -> None:
    """Serve the bundled demo site and run the demo mission on it."""
    from runner.demo import run_demo

    try:
        code = run_demo(evidence_dir, _reporter(quiet, as_json))
    except WardenError as exc:
        _fail(exc)
    sys.exit(code)


@cli.group()
def evidence() -> None:
    """List, show and verify evidence."""


@evidence.command("list")
@_evidence_dir_option
@_db_option
def evidence_list(evidence_dir: Path, db_url: str | None) -> None:
    """List the runs in the evidence dir."""
    from runner.evidence_cli import list_runs

    try:
        list_runs(evidence_dir, db_url)
    except WardenError as exc:
        _fail(exc)


@evidence.command("show")
@click.argument("run_ref", metavar="RUN")
@_evidence_dir_option
@_db_option
def evidence_show(run_ref: str, evidence_dir: Path, db_url: str | None) -> None:
    """Show a run as a readable timeline."""
    from runner.evidence_cli import show_run

    try:
        show_run(run_ref, evidence_dir, db_url)
    except WardenError as exc:
        _fail(exc)


@evidence.command("verify")
@click.argument("run_ref", metavar="RUN")
@_evidence_dir_option
@_db_option
def evidence_verify(run_ref: str, evidence_dir: Path, db_url: str | None) -> None:
    """Recompute the hash chain and attachment hashes: exit 0 intact, 1 altered."""
    from runner.evidence_cli import verify

    try:
        code = verify(run_ref, evidence_dir, db_url)
    except WardenError as exc:
        _fail(exc)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
