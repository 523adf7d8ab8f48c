#!/usr/bin/env bash
# PostgreSQL server binaries for tests/test_postgres_instance.py and tests/test_backfill_daemon.py.
# The tests start and stop their own server (initdb in a temporary directory, 127.0.0.1, a free
# port) as the `postgres` user, so the packaged cluster service is neither needed nor started.
# Runs as root on a fresh Debian/Ubuntu machine (network: package registries only).
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "PostgreSQL already installed: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# The postgresql-common postinst would create and start a default cluster; the tests do not use it.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/medtrinity-ci.conf

for attempt in 1 2 3; do
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql; then
    break
  fi
  [ "$attempt" = 3 ] && { echo "apt-get install postgresql failed" >&2; exit 1; }
  sleep $((attempt * 10))
done

ls -d /usr/lib/postgresql/*/bin
id postgres
