"""A separate process that writes to a store, for the multi-process conformance tests.

Usage: python _worker.py append URL SESSION_ID COUNT [TAG]
       python _worker.py incr URL SCOPE KEY COUNT
       python _worker.py first-open URL SESSION_ID   (a fresh store: migrate, create, append)
       python _worker.py cold-extend URL SESSION_ID COUNT [PAD [FACE]]
         (a cold object: 'ready' before its first store call, then one extend of COUNT;
          prints 'done SECONDS' with the extend's duration, for the parent to time kills;
          FACE async: an AsyncPraisonDB)
Prints 'ready' once the store is open so the parent can time a kill.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from praisondb import PraisonDB
from praisondb.aio import AsyncPraisonDB


def main(argv: list[str]) -> None:
    action, url = argv[0], argv[1]
    if action == "first-open":
        with PraisonDB(url, auto_migrate=True) as db:
            db.sessions.create(argv[2])
            db.messages.append(argv[2], "user", "hello")
            print(db.sessions.count(), flush=True)
        return
    if action == "cold-extend":
        pad = int(argv[4]) if len(argv) > 4 else 0
        cold_extend(url, argv[2], int(argv[3]), pad, argv[5] if len(argv) > 5 else "sync")
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


def cold_extend(url: str, session_id: str, count: int, pad: int, face: str) -> None:
    """The first write of a fresh object: nothing has touched the store before it.

    Message i reads ``c-i `` then ``pad`` x's: padding makes the write take long enough
    for a kill to land inside it."""
    batch = [
        {"role": "user", "content": f"c-{i} " + "x" * pad, "metadata": {"i": i}}
        for i in range(count)
    ]
    if face == "async":
        asyncio.run(_cold_extend_async(url, session_id, batch))
        return
    with PraisonDB(url) as db:
        print("ready", flush=True)
        started = time.perf_counter()
        db.messages.extend(session_id, batch)
        print(f"done {time.perf_counter() - started:.6f}", flush=True)


async def _cold_extend_async(url: str, session_id: str, batch: list[dict[str, Any]]) -> None:
    async with AsyncPraisonDB(url) as db:
        print("ready", flush=True)
        started = time.perf_counter()
        await db.messages.extend(session_id, batch)
        print(f"done {time.perf_counter() - started:.6f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
