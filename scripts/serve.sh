#!/usr/bin/env bash
# Sets everything up and starts Observatory on the embedded default (SQLite, in-process queue,
# no Ollama needed). Extra arguments go to `observatory serve` (e.g. --port 9000).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
"$UV" sync --frozen --no-dev --inexact
echo "Starting Observatory (API docs at /docs on the address below)" >&2
exec "$UV" run --frozen --no-dev observatory serve "$@"
