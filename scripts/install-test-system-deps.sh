#!/usr/bin/env bash
# System packages the test suite needs beyond the Python extras (CI calls this before
# scripts/test): Debian's chromium, for the headless-browser test of the query page
# (tests/test_server.py). Idempotent and quick when already installed. Needs root (or sudo).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  echo "chromium: already installed ($(command -v chromium || command -v chromium-browser))"
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-system-deps: run as root (apt-get install -y chromium)" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium
command -v chromium
