# Sourced by the scripts: finds or installs uv, and moves into the service folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICE="$ROOT/services/observatory"
export UV_PYTHON_DOWNLOADS=never
if command -v uv >/dev/null 2>&1; then
  UV="$(command -v uv)"
elif [ -x "$ROOT/.tools/bin/uv" ]; then
  UV="$ROOT/.tools/bin/uv"
else
  echo "uv not found: installing it into $ROOT/.tools (a private virtual environment)" >&2
  python3 -m venv "$ROOT/.tools"
  "$ROOT/.tools/bin/python" -m pip install --quiet --disable-pip-version-check uv
  UV="$ROOT/.tools/bin/uv"
fi
export UV
cd "$SERVICE"
