"""A tally of injected faults and their outcomes, printed at the end of the run.

Tests call :func:`record`; each line goes to the file named by ``PRAISONDB_FAULT_LOG``
(set by tests/conftest.py before xdist workers start, so every worker appends to the
same file), and :func:`summary` turns the file into the closing table.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import orjson

ENV = "PRAISONDB_FAULT_LOG"


def record(backend: str, fault: str, outcome: str, *, checked: int = 0) -> None:
    """One injected fault: what it was, what the caller saw, how many acknowledged
    writes were checked afterwards (present exactly once)."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = orjson.dumps(
        {"backend": backend, "fault": fault, "outcome": outcome, "checked": checked}
    )
    with open(path, "ab") as out:  # one short append per line: atomic between workers
        out.write(line + b"\n")


def summary(path: Path) -> list[str]:
    """Per backend: faults by kind and outcome, and the acknowledged writes checked."""
    if not path.exists():
        return []
    faults: dict[str, Counter[tuple[str, str]]] = {}
    checked: Counter[str] = Counter()
    for raw in path.read_bytes().splitlines():
        row = orjson.loads(raw)
        faults.setdefault(row["backend"], Counter())[(row["fault"], row["outcome"])] += 1
        checked[row["backend"]] += int(row["checked"])
    lines = []
    for backend in sorted(faults):
        kinds: dict[str, list[str]] = {}
        for (fault, outcome), n in sorted(faults[backend].items()):
            kinds.setdefault(fault, []).append(f"{outcome} {n}")
        parts = [
            f"{sum(n for (f, _), n in faults[backend].items() if f == fault)} {fault} "
            f"({', '.join(outcomes)})"
            for fault, outcomes in kinds.items()
        ]
        lines.append(
            f"{backend}: {'; '.join(parts)} -> {checked[backend]} acknowledged writes "
            "checked, each present once"
        )
    return lines
