#!/usr/bin/env bash
# Install the Debian packages the browser tests (chromium) and the gradebook tests (postgresql)
# need, when they are missing and we are root. Otherwise say what is missing; the tests that need
# them fail with the same message (they are never silently skipped).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/lib/postgresql/*/bin/postgres ] 2>/dev/null || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "missing system packages: ${need[*]} (install with: sudo apt-get install -y ${need[*]})" >&2
fi
