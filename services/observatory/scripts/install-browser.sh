#!/usr/bin/env bash
# Installs the browser the `browser` tests drive: Debian's chromium (Playwright launches it
# with executable_path; its own browser download is not used). Does nothing when it is
# already there. Needs root (or sudo) and apt-get; elsewhere it says so and the browser
# tests skip loudly (or fail under --ci).
set -euo pipefail

BROWSER="${OBSERVATORY_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$BROWSER" ]; then
  echo "chromium: $("$BROWSER" --version 2>/dev/null || echo "$BROWSER")"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing and apt-get is not available: install a Chromium at $BROWSER" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing chromium from the distribution's packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $("$BROWSER" --version)"
