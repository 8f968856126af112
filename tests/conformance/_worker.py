"""A separate process that writes to a store, for the multi-process conformance tests.

Usage: python _worker.py append URL SESSION_ID COUNT [TAG]
       python _worker.py incr URL SCOPE KEY COUNT
       python _worker.py first-open URL SESSION_ID   (a fresh store: migrate, create, append)
Prints 'ready' once the store is open so the parent can time a kill.
"""

from __future__ import annotations

import sys

from praisondb import PraisonDB


def main(argv: list[str]) -> None:
    action, url = argv[0], argv[1]
    if action == "first-open":
        with PraisonDB(url, auto_migrate=True) as db:
            db.sessions.create(argv[2])
            db.messages.append(argv[2], "user", "hello")
            print(db.sessions.count(), flush=True)
        return
    with PraisonDB(url) as db:
        db.ping()
        print("ready", flush=True)
        if action == "append":
            session_id, count = argv[2], int(argv[3])
            tag = argv[4] if len(argv) > 4 else "w"
            for i in range(count):
                db.messages.append(session_id, "user", f"{tag}-{i}", {"worker": tag, "i": i})
        elif action == "incr":
            scope, key, count = argv[2], argv[3], int(argv[4])
            for _ in range(count):
                db.state.incr(key, scope=scope)
        else:
            raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main(sys.argv[1:])
