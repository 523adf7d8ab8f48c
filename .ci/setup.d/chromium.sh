#!/usr/bin/env bash
# Headless Chromium for tests/test_export_release.py (the release gallery is rendered in a real browser).
# Runs as root on a fresh Debian machine that reaches package registries only.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "Chromium already installed: $(chromium --version 2>/dev/null || true)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3; do
  if apt-get update -qq && apt-get install -y -qq chromium >/dev/null; then
    break
  fi
  [ "$attempt" = 3 ] && { echo "could not install chromium" >&2; exit 1; }
  sleep $((attempt * 10))
done
chromium --version
