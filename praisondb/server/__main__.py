"""``python -m praisondb server openapi``: print the OpenAPI document of the server
(``> docs/openapi.json`` refreshes the committed copy)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv != ["openapi"]:
        print("usage: python -m praisondb.server openapi > docs/openapi.json", file=sys.stderr)
        return 2
    from .app import ROUTES
    from .openapi import dumps

    sys.stdout.buffer.write(dumps(ROUTES))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
