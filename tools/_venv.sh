# Sourced by tools/demo.sh and tools/test.sh: make sure .venv exists with the given extras,
# within tools/constraints.txt (the versions the test servers need, e.g. pymongo 4.13.2 for
# MongoDB 4.0). The install is skipped when neither file changed since the last one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PRAISONDB_VENV:-$ROOT/.venv}"
ensure_venv() {
  local extras="$1" stamp
  if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
  fi
  stamp="$VENV/.praisondb-installed-$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] \
    || [ "$ROOT/tools/constraints.txt" -nt "$stamp" ]; then
    echo "installing praisondb[$extras] into $VENV ..."
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -c "$ROOT/tools/constraints.txt" -e "$ROOT[$extras]"
    touch "$stamp"
  fi
}
