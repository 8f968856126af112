#!/usr/bin/env bash
# The whole test suite against every backend: installs what is missing, brings every
# server up (tools/services.sh), lints, type-checks, then runs pytest. Extra arguments
# go to pytest, e.g. `bash tools/test.sh -k messages --backends=sqlite,postgres`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv "dev"
cd "$ROOT"
bash tools/services.sh up
eval "$(bash tools/services.sh env)"
export PRAISONDB_REQUIRE_ALL_BACKENDS="${PRAISONDB_REQUIRE_ALL_BACKENDS:-1}"
echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/pytest" -n "${PRAISONDB_TEST_WORKERS:-4}" "$@"
