"""A separate process that adds memories, for the multi-process eviction test.

Usage: python _memory_worker.py URL OWNER MAX_MEMORIES Q1 Q2 ...
Adds one memory per quality Qi for user OWNER (text ``m-Qi``), its quality set by a
scorer that reads ``metadata["q"]``. Prints 'ready' once the store answers, then 'done'.
The face is named by PRAISONDB_TEST_FACE.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tests.faces import FACE_ENV, run_on_face


def add_all(db: Any, owner: str, max_memories: int, qualities: list[str]) -> None:
    db.ping()
    print("ready", flush=True)
    memory = db.memory(max_memories=max_memories)
    memory.set_quality_scorer(lambda item: item.metadata["q"])
    for q in qualities:
        memory.add(f"m-{q}", user_id=owner, metadata={"q": float(q)})
    print("done", flush=True)


def main(argv: list[str]) -> None:
    url, owner, max_memories, qualities = argv[0], argv[1], int(argv[2]), argv[3:]
    face = os.environ.get(FACE_ENV, "sync")
    run_on_face(face, url, lambda db: add_all(db, owner, max_memories, qualities))


if __name__ == "__main__":
    main(sys.argv[1:])
