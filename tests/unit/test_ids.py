from __future__ import annotations

import threading
import uuid

from praisondb.ids import new_id


def test_ids_are_uuid7_and_strictly_increasing() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_ids_are_unique_across_threads() -> None:
    found: list[list[str]] = [[] for _ in range(8)]

    def make(slot: int) -> None:
        found[slot] = [new_id() for _ in range(2000)]

    threads = [threading.Thread(target=make, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for chunk in found for i in chunk]
    assert len(set(every)) == 16_000
    for chunk in found:
        assert chunk == sorted(chunk)


def test_a_forked_child_does_not_repeat_the_parents_random_bits() -> None:
    import os

    new_id()  # fill the parent's pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    parent = new_id()
    assert child[-12:] != parent[-12:]
