"""A separate process that writes to a store, for the multi-process conformance tests.

Usage: python _worker.py append URL SESSION_ID COUNT [TAG]
       python _worker.py incr URL SCOPE KEY COUNT
       python _worker.py first-open URL SESSION_ID   (a fresh store: migrate, create, append)
       python _worker.py cold-extend URL SESSION_ID COUNT [PAD]
         (a cold object: 'ready' before its first store call, then one extend of COUNT;
          prints 'done SECONDS' with the extend's duration, for the parent to time kills)
Prints 'ready' once the store is open so the parent can time a kill. The face it runs on
(sync, or AsyncPraisonDB under asyncio.run) is named by PRAISONDB_TEST_FACE.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from tests.faces import FACE_ENV, run_on_face


def main(argv: list[str]) -> None:
    action, url = argv[0], argv[1]
    face = os.environ.get(FACE_ENV, "sync")
    if action == "first-open":
        run_on_face(face, url, lambda db: first_open(db, argv[2]), auto_migrate=True)
    elif action == "cold-extend":
        pad = int(argv[4]) if len(argv) > 4 else 0
        run_on_face(face, url, lambda db: cold_extend(db, argv[2], int(argv[3]), pad))
    elif action in ("append", "incr"):
        run_on_face(face, url, lambda db: write(db, action, argv[2:]))
    else:
        raise SystemExit(f"unknown action {action}")


def first_open(db: Any, session_id: str) -> None:
    db.sessions.create(session_id)
    db.messages.append(session_id, "user", "hello")
    print(db.sessions.count(), flush=True)


def write(db: Any, action: str, args: list[str]) -> None:
    db.ping()
    print("ready", flush=True)
    if action == "append":
        session_id, count = args[0], int(args[1])
        tag = args[2] if len(args) > 2 else "w"
        for i in range(count):
            db.messages.append(session_id, "user", f"{tag}-{i}", {"worker": tag, "i": i})
    else:
        scope, key, count = args[0], args[1], int(args[2])
        for _ in range(count):
            db.state.incr(key, scope=scope)


def cold_extend(db: Any, session_id: str, count: int, pad: int) -> None:
    """The first write of a fresh object: nothing has touched the store before it.

    Message i reads ``c-i `` then ``pad`` x's: padding makes the write take long enough
    for a kill to land inside it."""
    batch = [
        {"role": "user", "content": f"c-{i} " + "x" * pad, "metadata": {"i": i}}
        for i in range(count)
    ]
    print("ready", flush=True)
    started = time.perf_counter()
    db.messages.extend(session_id, batch)
    print(f"done {time.perf_counter() - started:.6f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
