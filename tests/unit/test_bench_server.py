"""tools/bench_server.py runs end to end and prints what README's Server table reads: both
paths per client count, the ratio row, and the HTTP round trip it is read against."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_module

require_module("starlette")
ROOT = Path(__file__).resolve().parents[2]


def test_bench_server_runs_end_to_end() -> None:
    args = ["--store", "sqlite", "--clients", "1,3", "--appends", "24", "--history", "60"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_server.py"), *args, "--rounds", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for clients in ("1", "3"):
        paths = [line.split("|")[2].strip() for line in lines if line.startswith(f"| {clients} |")]
        assert paths == ["direct", "server", "ratio"]
    ratio = next(line for line in lines if line.startswith("| 1 | ratio"))
    assert re.search(r"\| \d+\.\d\dx \| \d+\.\d\dx \|", ratio)
    assert re.search(r"GET /healthz, no store\): \d+\.\d{3} ms p50", result.stdout)
