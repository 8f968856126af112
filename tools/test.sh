#!/usr/bin/env bash
# The whole test suite against every backend: installs what is missing, brings every
# server up, lints, type-checks, then runs pytest. Extra arguments go to pytest, e.g.
# `bash tools/test.sh -k messages --backends=sqlite,postgres`.
# Servers: PRAISONDB_TEST_SERVERS=local (tools/services.sh), containers (Docker, through
# testcontainers: tests/containers.py) or auto (default: containers when a Docker engine
# answers, else local).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv "dev"
cd "$ROOT"
servers="$("$VENV/bin/python" -m tests.containers mode)"
export PRAISONDB_TEST_SERVERS="$servers"
if [ "$servers" = containers ]; then
  # The pytest controller starts the containers (tests/conftest.py). Local all the same:
  # the Redis Cluster (no container can announce reachable node addresses, see
  # tests/containers.py); PgBouncer and the PostgreSQL behind it (its tests create
  # databases on the server PgBouncer forwards to); mongod, whose binary the tests that
  # kill a private mongod need.
  echo "== servers: containers (local: Redis Cluster, PostgreSQL + PgBouncer)"
  bash tools/services.sh up redis_cluster postgres pgbouncer mongodb
  eval "$(bash tools/services.sh env redis_cluster postgres pgbouncer)"
else
  echo "== servers: local"
  bash tools/services.sh up
  eval "$(bash tools/services.sh env)"
fi
export PRAISONDB_REQUIRE_ALL_BACKENDS="${PRAISONDB_REQUIRE_ALL_BACKENDS:-1}"
echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
# worksteal: a worker that runs out of tests takes pending ones from a busy worker, so a
# few minute-long tests (kill -9 copies, the SDK kit) do not leave the other workers idle
# at the end as the fixed split of --dist load does
"$VENV/bin/pytest" -n "${PRAISONDB_TEST_WORKERS:-4}" --dist worksteal --durations=15 "$@"
