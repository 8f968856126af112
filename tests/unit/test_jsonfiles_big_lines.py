"""Reading the JSON store's log backwards (``list(last=N)``) is linear in a line's size:
a 100 MB message used to take 100 s (every 64 KiB block was prepended to the line)."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

from praisondb import PraisonDB
from praisondb.stores.jsonfiles.files import lines_backward


def _reference(data: bytes, end: int) -> list[bytes]:
    parts = data[:end].split(b"\n")
    parts.pop()  # after the final newline: empty or a torn write
    return [p for p in reversed(parts) if p]


def test_lines_backward_matches_a_plain_split() -> None:
    rng = random.Random(15)
    for _ in range(2000):
        data = bytes(rng.choice(b"ab\n") for _ in range(rng.randint(0, 50)))
        end = rng.randint(0, len(data))
        for chunk in (1, 2, 3, 7, 64):
            got = list(lines_backward(io.BytesIO(data), end, chunk))
            assert got == _reference(data, end), (data, end, chunk)


def test_a_32_mb_message_reads_back_from_the_end_in_linear_time(tmp_path: Path) -> None:
    big = "x" * (32 * 1024 * 1024)
    with PraisonDB(f"json://{tmp_path}") as db:
        db.sessions.create("s")
        db.messages.append("s", "user", big)
        db.messages.append("s", "user", "small")
        started = time.monotonic()
        newest = db.messages.list("s", last=2)
        elapsed = time.monotonic() - started
    assert [m.content for m in newest] == [big, "small"]
    assert elapsed < 3, f"{elapsed:.1f} s: quadratic again (was ~10 s, now ~0.2 s)"
