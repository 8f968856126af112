#!/usr/bin/env bash
# Test backends: up | down | env | status [service...]   (see tools/services.py)
#   bash tools/services.sh up && eval "$(bash tools/services.sh env)"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PRAISONDB_PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$here/../.venv/bin/python" ]]; then python="$here/../.venv/bin/python"; else python="python3"; fi
fi
exec "$python" "$here/services.py" "$@"
