"""compose.yaml is checked against what it drives (no Docker needed): the worker's command line is
one `warden worker` accepts, every variable it sets is one Warden reads, and nothing listens beyond
the host's loopback. (Validated with `docker-compose config` 1.29.2 where it exists; CI has no Docker.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from runner.cli import cli
from runner.fleet.payload import KEY_ENV

REPO = Path(__file__).resolve().parents[3]
_DEFAULT = re.compile(r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return data


def _expand(text: str) -> str:
    """Compose's interpolation with its defaults (``${X:-d}`` → d, ``${X}``/``${X:?m}`` → X)."""
    return _DEFAULT.sub(lambda m: m.group(2) if m.group(2) is not None else m.group(1).lower(), text)


def test_the_worker_command_is_one_warden_worker_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _compose()["services"]["worker"]
    argv = [_expand(a) for a in worker["command"]]
    env = {k: _expand(str(v)) for k, v in worker["environment"].items()}
    for name, value in env.items():  # the container's environment, as the worker reads it
        monkeypatch.setenv(name, value)
    command = cli.commands[argv[0]]
    assert isinstance(command, click.Command) and argv[0] == "worker"
    ctx = command.make_context(argv[0], argv[1:], default_map=None)
    assert ctx.params["concurrency"] == 2
    assert ctx.params["db_url"] == env["WARDEN_DB"] and str(ctx.params["evidence_dir"]) == env["WARDEN_EVIDENCE_DIR"]
    # the variables it sets are the ones Warden reads: the fleet database, the sealing key, the evidence dir
    assert set(env) == {"WARDEN_DB", KEY_ENV, "WARDEN_EVIDENCE_DIR"}
    assert env["WARDEN_DB"].startswith("postgresql://") and "@postgres:5432/" in env["WARDEN_DB"]
    assert worker["build"] == "." and (REPO / "Dockerfile").is_file()
    assert env["WARDEN_EVIDENCE_DIR"] in {v.split(":")[1] for v in worker["volumes"]}
    assert worker["stop_signal"] == "SIGTERM"  # a step finishes, the run records the stop


def test_only_loopback_reaches_the_database() -> None:
    services = _compose()["services"]
    assert "ports" not in services["worker"]
    ports = [_expand(p) for p in services["postgres"]["ports"]]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)
    assert "?" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]  # no default password
