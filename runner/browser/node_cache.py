"""Node's compile cache for Playwright's driver: its bundled JavaScript compiled once, not per run.

Why: every run starts a fresh Playwright driver (node), which parses and compiles ~7 MB of bundled
JavaScript before it can launch Chromium. Measured on this project's machine kind (2 vCPU, node
v26 of Playwright 1.65.2): loading the bundles costs 0.93 s of CPU cold and 0.51 s with Node's own
compile cache (``NODE_COMPILE_CACHE``), on the path to the first action and in every one of a
fleet's parallel runs. Node keys each entry by its node version and the source file's hash, so a
changed bundle (a Playwright upgrade) is compiled again, never served stale.

The cache holds V8 code that the driver runs, and the driver drives the sandboxed browser: a cache
someone else could write would be a way into it. So the folder is used only when this user owns
it and every folder from the cache base down, none a symlink and none writable by group or
others; otherwise the driver runs without a cache (slower, never less safe). A
``NODE_COMPILE_CACHE`` already in the environment is the operator's choice and is left alone.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

ENV_NODE_CACHE = "NODE_COMPILE_CACHE"
_SUBDIRS = ("warden", "node-compile-cache")


def cache_base(environ: MutableMapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME``, else a per-user folder in the temp dir (as the PII engine's caches)."""
    return Path(environ.get("XDG_CACHE_HOME") or os.path.join(tempfile.gettempdir(), f"warden-{os.getuid()}"))


def _private_dir(path: Path) -> bool:
    """Whether ``path`` is a real folder (no symlink) of this user that group and others cannot write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def private_cache_dir(environ: MutableMapping[str, str]) -> Path | None:
    """The driver's compile cache folder, made (0700) if missing; None when it is not private."""
    path = cache_base(environ)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private_dir(path):
            return None
        for part in _SUBDIRS:
            path = path / part
            path.mkdir(mode=0o700, exist_ok=True)
            if not _private_dir(path):
                return None
    except OSError:
        return None
    return path


def use_compile_cache(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Point the driver (started after this, with a copy of ``environ``) at the private cache.

    Returns the folder in use, or None (an operator's own ``NODE_COMPILE_CACHE`` is kept as is)."""
    if environ.get(ENV_NODE_CACHE):
        return None
    folder = private_cache_dir(environ)
    if folder is not None:
        environ[ENV_NODE_CACHE] = str(folder)
    return folder
