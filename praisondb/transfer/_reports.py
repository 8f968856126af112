"""What a transfer reports: counts, conflicts, differences, and live progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

OnConflict = Literal["skip", "overwrite", "fail"]
StateMode = Literal["auto", "all", "none"]
MAX_LISTED = 100
"""Reports list at most this many sessions by name; counts are always complete."""


@dataclass
class Progress:
    """A snapshot handed to the ``progress`` callback after every batch."""

    phase: str
    sessions_done: int
    sessions_total: int | None
    messages_done: int
    messages_total: int | None
    bytes_done: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Messages per second so far."""
        return self.messages_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, when the total is known and progress has been made."""
        if not self.messages_total or not self.messages_done or self.elapsed <= 0:
            return None
        left = max(self.messages_total - self.messages_done, 0)
        return left / self.rate if self.rate else None


ProgressCallback = Callable[[Progress], None]


@dataclass
class SessionDiff:
    """How one session differs between the two sides; ``problems`` say it in words."""

    session_id: str
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.session_id}: " + "; ".join(self.problems)


@dataclass
class VerifyReport:
    source: str
    target: str
    sessions_checked: int = 0
    sessions_ok: int = 0
    sessions_different: int = 0
    messages_checked: int = 0
    state_checked: int = 0
    state_different: int = 0
    memories_checked: int = 0
    memories_different: int = 0
    differences: list[SessionDiff] = field(default_factory=list)
    state_differences: list[str] = field(default_factory=list)
    memory_differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.sessions_different == 0
            and self.state_different == 0
            and self.memories_different == 0
        )

    def add_difference(self, diff: SessionDiff) -> None:
        self.sessions_different += 1
        if len(self.differences) < MAX_LISTED:
            self.differences.append(diff)

    def add_state_difference(self, text: str) -> None:
        self.state_different += 1
        if len(self.state_differences) < MAX_LISTED:
            self.state_differences.append(text)

    def add_memory_difference(self, text: str) -> None:
        self.memories_different += 1
        if len(self.memory_differences) < MAX_LISTED:
            self.memory_differences.append(text)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


@dataclass
class TransferReport:
    """The outcome of ``copy``, ``export`` or ``import_``."""

    operation: str
    source: str
    target: str
    dry_run: bool = False
    sessions_seen: int = 0
    sessions_created: int = 0
    sessions_updated: int = 0
    sessions_unchanged: int = 0
    sessions_replaced: int = 0
    sessions_conflicting: int = 0
    messages_copied: int = 0
    runs_copied: int = 0
    checkpoints_copied: int = 0
    spans_copied: int = 0
    state_copied: int = 0
    memories_copied: int = 0
    bytes: int | None = None
    """Size of the records as archive JSON: what an export writes or an import reads, and
    what a dry run plans to move. None for a real copy: between two stores the bytes on
    the wire are not known, and measuring records would slow the copy down."""
    elapsed: float = 0.0
    resumed: bool = False
    incremental_since: str | None = None
    conflicts: list[SessionDiff] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verify: VerifyReport | None = None

    @property
    def messages_per_second(self) -> float:
        return self.messages_copied / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.damage and (self.verify is None or self.verify.ok)

    def add_conflict(self, diff: SessionDiff) -> None:
        """List a conflicting session (the count comes from ``Tracker.session_done``)."""
        if len(self.conflicts) < MAX_LISTED:
            self.conflicts.append(diff)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verify"] = self.verify.to_dict() if self.verify else None
        # a dry run moves nothing: its elapsed time is no rate (nor an estimate of one)
        data["messages_per_second"] = None if self.dry_run else round(self.messages_per_second, 1)
        data["ok"] = self.ok
        return data


class Tracker:
    """Thread-safe counters behind a report, feeding the progress callback."""

    def __init__(
        self,
        report: TransferReport,
        phase: str,
        callback: ProgressCallback | None,
        *,
        sessions_total: int | None = None,
        messages_total: int | None = None,
    ) -> None:
        self.report = report
        self.phase = phase
        self.callback = callback
        self.sessions_total = sessions_total
        self.messages_total = messages_total
        self.sessions_done = 0
        self.lock = threading.Lock()
        self.started = time.perf_counter()

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, amount in counts.items():
                current = getattr(self.report, name)
                if current is not None:  # None: not measured (bytes of a real copy)
                    setattr(self.report, name, current + amount)
            self._emit()

    def session_done(self, outcome: str) -> None:
        """``outcome`` is one of created/updated/unchanged/replaced/conflicting."""
        with self.lock:
            self.sessions_done += 1
            name = f"sessions_{outcome}"
            setattr(self.report, name, getattr(self.report, name) + 1)
            self._emit()

    def _emit(self) -> None:
        if self.callback is not None:
            self.callback(self.snapshot())

    def snapshot(self) -> Progress:
        return Progress(
            self.phase,
            self.sessions_done,
            self.sessions_total,
            self.report.messages_copied,
            self.messages_total,
            self.report.bytes or 0,
            time.perf_counter() - self.started,
        )
