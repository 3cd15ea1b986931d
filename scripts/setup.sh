#!/usr/bin/env bash
# Creates .venv with knowwhen and its test tools. Idempotent: a stamp keyed on pyproject.toml
# makes a second run return in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
STAMP=.venv/.setup-stamp
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

as_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  # Only root can install Debian packages; everyone else gets the fallback the caller chose.
  as_root || return 1
  if [ ! -f /tmp/.knowwhen-apt-updated ]; then apt-get update -q >/dev/null && touch /tmp/.knowwhen-apt-updated; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x .venv/bin/python ]; then
  :
else
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "setup: knowwhen needs Python >= 3.10; $PY is $("$PY" --version 2>&1)." >&2; exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    if ! "$PY" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      apt_install python3-venv || { echo "setup: '$PY -m venv' failed; install python3-venv (apt-get install python3-venv) and retry." >&2; exit 1; }
      "$PY" -m venv .venv
    fi
  fi
  echo "setup: installing knowwhen and its dependencies into .venv (first time: about a minute)"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v -E "^WARNING: Location" || true
  .venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v -E "^WARNING: Location" || true
  .venv/bin/python -c "import knowwhen, torch, lightning" || { echo "setup: installation failed (see pip output above)" >&2; exit 1; }
  echo "$want" > "$STAMP"
fi

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if apt_install dataset-fashion-mnist 2>/dev/null; then
    echo "setup: installed Debian's dataset-fashion-mnist"
  else
    echo "setup: Fashion-MNIST is not installed and cannot be installed here (needs root); the demo will use scikit-learn's digits."
  fi
fi

# The report's browser test opens report.html in Debian's Chromium through chromedriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if apt_install chromium chromium-driver 2>/dev/null; then
    echo "setup: installed Debian's chromium and chromium-driver (for the report's browser test)"
  else
    echo "setup: chromium / chromium-driver are not installed and cannot be installed here (needs root); the browser test will be skipped."
  fi
fi
