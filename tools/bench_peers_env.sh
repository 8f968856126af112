#!/usr/bin/env bash
# Make .venv-bench: the environment of tools/bench_async.py --peers (and of its profiling).
#
# The peers (the OpenAI Agents SDK's SQLAlchemySession and RedisSession), asyncpg and
# yappi are what the benchmark compares with or profiles with, never dependencies of
# praisondb: they live in this separate, gitignored venv. praisondb is installed with the
# extras the benchmark drives (not editable: the bench scripts put the checkout first on
# sys.path, so the copy only brings in its dependencies). Rerun after pyproject.toml
# changes; an up-to-date env is left as it is.
#
# Usage: bash tools/bench_peers_env.sh && .venv-bench/bin/python tools/bench_async.py --peers
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PRAISONDB_BENCH_VENV:-$ROOT/.venv-bench}"
STAMP="$VENV/.praisondb-bench-installed"
PEERS=("openai-agents[sqlalchemy,redis]" "asyncpg" "yappi")

if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || [ "$0" -nt "$STAMP" ]; then
  echo "installing praisondb[postgres,mysql,redis,mongo,async,bench] and ${PEERS[*]} into $VENV ..."
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "$ROOT[postgres,mysql,redis,mongo,async,bench]" "${PEERS[@]}"
  touch "$STAMP"
fi
echo "ready: $VENV/bin/python tools/bench_async.py --peers"
