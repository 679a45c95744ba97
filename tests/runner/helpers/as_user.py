"""Running ``warden`` as another OS user (``runuser -u USER``), for the four-eyes tests.

The venv's interpreter may live where another user cannot execute it (e.g. a pyenv build under
``/root``, mode 0700). Then the same Python minor version from the system (``/usr/bin/python3.X``)
runs the same code: the venv's site-packages and the repository on ``PYTHONPATH``, ``runner.cli``'s
``main`` as the entry point — still a separate process of that user, with that user's uid.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
WARDEN = str(Path(sys.executable).parent / "warden")
_ENTRY = "import sys; from runner.cli import main; sys.argv[0] = 'warden'; sys.exit(main())"


def _can_execute(user: str, path: str) -> bool:
    probe = subprocess.run(["runuser", "-u", user, "--", path, "-c", "pass"], capture_output=True, timeout=60)
    return probe.returncode == 0


def warden_as(user: str) -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment that run ``warden`` as ``user``."""
    env = {**os.environ, "COLUMNS": "200"}
    if _can_execute(user, sys.executable):
        return ["runuser", "-u", user, "--", WARDEN], env
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not os.access(system, os.X_OK) or not _can_execute(user, system):
        raise RuntimeError(f"{user} can run neither {sys.executable} nor {system}")
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return ["runuser", "-u", user, "--", system, "-c", _ENTRY], env
