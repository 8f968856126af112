"""tools/bench_memory.py measures what it says: its reference is exact BM25 (the same
ranking as praisondb.core.ranking's brute force), and the script runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from praisondb.core import ranking

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from bench_memory import Generator, Reference, recall  # noqa: E402 - tools/ is not a package


def test_the_reference_is_brute_force_bm25() -> None:
    generator = Generator(7)
    items = generator.items(1500)
    reference = Reference(items)
    for query in generator.queries(items, 40):
        brute = ranking.rank(query, [(item.id, item.text) for item in items], 10)
        fast = reference.top(query)
        assert [round(s, 9) for _, s in fast[: len(brute)]] == [round(s, 9) for _, s in brute]
        assert {i for i, _ in brute} <= {i for i, _ in fast}  # ties at 10th place kept


def test_recall_counts_ties_at_the_cut_either_way() -> None:
    reference = [("a", 3.0), ("b", 2.0), ("c", 1.0), ("d", 1.0)]
    assert recall(["a", "b", "d"], reference, limit=3) == 1.0
    assert recall(["a", "x", "y"], reference, limit=3) == pytest.approx(1 / 3)
    assert recall([], [], limit=10) == 1.0


def test_bench_memory_runs_end_to_end() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "bench_memory.py"),
            "--backends",
            "sqlite,memory",
            "--n",
            "300",
            "--queries",
            "20",
            "--adds",
            "10",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("| SQLite") or line.startswith("| memory://")
    }
    assert set(rows) == {"SQLite (FTS5, bm25)", "memory:// (shared BM25)"}, result.stdout
    for cells in rows.values():
        assert cells[0] == "300" and "nan" not in cells
        assert 0.0 < float(cells[4]) <= 1.0
    assert float(rows["memory:// (shared BM25)"][4]) == 1.0  # the same BM25 as the reference
    assert "cores, load average" in result.stdout
