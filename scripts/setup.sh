#!/usr/bin/env bash
# Idempotent set-up: the app venv (Python 3.11), the Rasa venv (Python 3.10) and, with
# --browser, Debian's Chromium for the browser tests. Re-running only redoes what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

want_browser=0
for arg in "$@"; do [ "$arg" = "--browser" ] && want_browser=1; done

find_python() {  # find_python 3.11 [ENV_VAR]
  local version=$1 var=${2:-} candidate
  if [ -n "$var" ] && [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  for candidate in "python$version" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$version"*/bin/python \
                   "$HOME/.pyenv/versions/$version"*/bin/python "/usr/bin/python$version" "/usr/local/bin/python$version" python3; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c "import sys; sys.exit(0 if sys.version.startswith('$version') else 1)" 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  return 1
}

stamp_ok() {  # stamp_ok VENV FILE...: the venv was installed from exactly these files
  [ -f "$1/.installed" ] && [ "$(cat "$1/.installed")" = "$(cat "${@:2}" | sha256sum)" ]
}

APP_PY=$(find_python 3.11 APP_PYTHON) || { echo "Python 3.11 not found (set APP_PYTHON)" >&2; exit 1; }
RASA_PY=$(find_python 3.10 RASA_PYTHON) || { echo "Python 3.10 not found (set RASA_PYTHON)" >&2; exit 1; }

if ! stamp_ok .venv pyproject.toml; then
  echo "==> app venv (.venv, $("$APP_PY" --version))"
  [ -x .venv/bin/python ] || "$APP_PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip setuptools wheel
  # torch first, pinned: the CPU build lies on local disk; anything looser pulls CUDA wheels.
  .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e ".[dev]"
  cat pyproject.toml | sha256sum > .venv/.installed
fi

if ! stamp_ok .venv-rasa requirements-rasa.txt; then
  echo "==> Rasa venv (.venv-rasa, $("$RASA_PY" --version))"
  [ -x .venv-rasa/bin/python ] || "$RASA_PY" -m venv .venv-rasa
  .venv-rasa/bin/pip install -q --upgrade pip setuptools wheel
  .venv-rasa/bin/pip install -q -r requirements-rasa.txt
  cat requirements-rasa.txt | sha256sum > .venv-rasa/.installed
fi

if [ "$want_browser" = 1 ] && [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  echo "==> Chromium (Debian package) for the browser tests"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "    cannot install Chromium here (needs root + apt); browser tests will be skipped" >&2
  fi
fi
