#!/usr/bin/env bash
# The main job on embedded defaults: SQLite + embedded ClickHouse, no servers needed.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv "demo"
exec "$VENV/bin/praisondb" demo "$@"
