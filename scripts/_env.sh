# Sourced by the scripts: checks Python, finds or installs uv, moves into the service folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICE="$ROOT/services/observatory"
export UV_PYTHON_DOWNLOADS=never

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "Observatory needs Python 3.11 or newer; '$PY' is $("$PY" --version 2>&1 || echo missing)." >&2
  echo "Install it, or point PYTHON at one: PYTHON=/usr/bin/python3.11 bash $0" >&2
  exit 1
fi
UV_PYTHON="$("$PY" -c 'import sys; print(sys.executable)')"
export UV_PYTHON

if uv --version >/dev/null 2>&1; then
  UV="$(command -v uv)"
elif [ -x "$ROOT/.tools/bin/uv" ]; then
  UV="$ROOT/.tools/bin/uv"
else
  echo "uv not found: installing it into $ROOT/.tools" >&2
  if "$PY" -m venv "$ROOT/.tools" >/dev/null 2>&1 &&
    "$ROOT/.tools/bin/python" -m pip install --quiet --disable-pip-version-check "uv>=0.9"; then
    UV="$ROOT/.tools/bin/uv"
  else
    # No venv module (Debian without python3-venv): a user install of the uv wheel.
    rm -rf "$ROOT/.tools"
    "$PY" -m pip install --quiet --user "uv>=0.9" 2>/dev/null ||
      "$PY" -m pip install --quiet --user --break-system-packages "uv>=0.9"
    UV="$("$PY" -c 'import uv; print(uv.find_uv_bin())')"
  fi
fi
export UV
cd "$SERVICE"
