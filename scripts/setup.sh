#!/usr/bin/env bash
# Everything a fresh Debian machine needs for Warden: Debian's Chromium, a virtualenv, the project.
# Idempotent and quiet when all is in place. Never runs `playwright install` (it downloads a browser
# build, which this kind of machine cannot reach, and Warden uses Debian's Chromium on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; return; fi
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"; return; fi
  return 1
}

apt_install() {
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; then
    as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  fi
}

# 1. Chromium from Debian (the real binary is /usr/lib/chromium/chromium).
chromium="${WARDEN_CHROMIUM:-/usr/lib/chromium/chromium}"
if [ ! -x "$chromium" ]; then
  echo "setup: installing Debian's chromium (apt-get install chromium)..."
  if ! apt_install chromium; then
    echo "setup: Chromium is missing and this user cannot install it." >&2
    echo "       As root run:  apt-get update && apt-get install -y chromium" >&2
    echo "       or point WARDEN_CHROMIUM at a Chromium binary." >&2
    exit 1
  fi
fi

# 2. The virtualenv (Debian's system Python needs python3-venv for this).
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    echo "setup: installing python3-venv..."
    apt_install python3-venv || { echo "setup: run as root: apt-get install -y python3-venv" >&2; exit 1; }
    "$PY" -m venv "$VENV"
  fi
fi

# 3. The project and its pinned browser pairing, reinstalled when pyproject.toml changes.
stamp="$VENV/.warden-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Warden and its dependencies into $VENV..."
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
    | grep -v -E "^WARNING: Location '.*' is ignored" || true
  "$VENV/bin/python" -c "import runner, playwright, presidio_analyzer" # fails loudly if the install did
  touch "$stamp"
fi
