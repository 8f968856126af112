"""The ClickHouse sink: buffer, journal, batches in flight, and the spool while ClickHouse is away.

See the package docstring (:mod:`praisondb.stores.clickhouse`) for how an event travels.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from ...analytics.codec import Columns, clean_columns, encode_json, events_to_columns
from ...analytics.journal import Journal, Watermark, encode_row
from ...analytics.options import default_spool_dir, parse_options
from ...analytics.schema import DEFAULT_DATABASE, LATEST, Layout, current_version, upgrade
from ...analytics.spool import Claimed, Spool
from ...errors import BackendUnavailable, BatchTypeError, PraisonDBError, SchemaOutOfDate
from ...model import Event
from ...urls import StoreURL, redact_text
from .client import (
    check_target,
    connect,
    database_from_path,
    first_line,
    ping_target,
    query_target,
    target_error,
)
from .insert import Encoded, Flight, encode, send_batch, stored_ids, unstored

log = logging.getLogger("praisondb.analytics")

_live_sinks: weakref.WeakSet[ClickHouseSink] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for sink in list(_live_sinks):
        try:
            sink.close()
        except Exception:
            log.exception("closing analytics sink at exit")


atexit.register(_close_all_at_exit)


def _detach_journals_in_child() -> None:
    """A forked child must not write into its parent's journal (the maps are shared)."""
    for sink in list(_live_sinks):
        journal, sink._journal = sink._journal, None
        if journal is not None:
            journal.detach()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_detach_journals_in_child)


class ClickHouseSink:
    """Batches events into ClickHouse from a background thread; answers ``run_query``.

    The ready queries live in :class:`praisondb.analytics.Analytics`, which wraps this sink.
    """

    def __init__(self, url: StoreURL, **options: Any) -> None:
        opts = parse_options(url, options)
        self.url = url
        database = opts.get("database") or database_from_path(url) or DEFAULT_DATABASE
        self.layout = Layout(database, opts.get("cluster") or None, opts.get("ttl_days"))
        self.chdb = url.scheme == "chdb"
        auto = opts.get("auto_migrate")
        self.auto_migrate: bool = self.chdb if auto is None else auto
        self.batch_size: int = opts.get("batch_size") or 50_000
        self.flush_interval: float = opts.get("flush_interval") or 1.0
        self.max_buffer: int = max(opts.get("max_buffer") or 200_000, self.batch_size)
        self.block_timeout: float = (
            1.0 if opts.get("block_timeout") is None else opts["block_timeout"]
        )
        self.retry_interval: float = (
            2.0 if opts.get("retry_interval") is None else opts["retry_interval"]
        )
        self._connect_timeout: float = opts.get("connect_timeout") or 5.0
        self._send_receive_timeout: float = opts.get("send_receive_timeout") or 60.0
        self._verify: bool = True if opts.get("verify") is None else opts["verify"]
        spool_dir = opts.get("spool_dir")
        self.spool = Spool(
            Path(spool_dir).expanduser() if spool_dir else default_spool_dir(url, database)
        )
        check_target(url)
        journal = True if opts.get("journal") is None else opts["journal"]
        self._journal = Journal(self.spool.directory) if journal else None
        self._watermark = Watermark()
        self._pop_lock = threading.Lock()
        self._popped = 0

        self._buffer: deque[Event] = deque()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._flush_requested = 0
        self._flushed = 0
        self._stopping = False
        self._closed = False
        self._writer: Any = None
        self._reader_client: Any = None
        self._admin_client: Any = None
        self._clients_lock = threading.Lock()
        self._failures = 0
        self._next_attempt = 0.0
        self._last_error: str | None = None
        self._counts = {"delivered": 0, "spooled": 0, "replayed": 0, "duplicates": 0, "rejected": 0}
        self._counts_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._flush_loop, name=f"praisondb-analytics-{id(self):x}", daemon=True
        )
        self._thread.start()
        _live_sinks.add(self)

    def __repr__(self) -> str:
        return f"ClickHouseSink({self.url.redacted!r})"

    # -- the caller's side ----------------------------------------------------------
    def record(self, event: Event) -> None:
        """Journal and queue one event: once this returns, a SIGKILL does not lose it.

        No system call unless the buffer is full or a journal segment fills (module doc).
        """
        if self._closed:
            self._spool_events([event])
            return
        buffer = self._buffer
        if len(buffer) >= self.max_buffer:
            self._make_room()
        journal = self._journal
        if journal is None:
            buffer.append(event)
        else:
            line = encode_row(event)
            with journal.lock:  # the journal's order is the buffer's order (see Watermark)
                journal.write(line)
                buffer.append(event)
        if len(buffer) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _make_room(self) -> None:
        deadline = time.monotonic() + self.block_timeout
        self._wake.set()
        while len(self._buffer) >= self.max_buffer and time.monotonic() < deadline:
            time.sleep(0.001)
        if len(self._buffer) >= self.max_buffer:
            moved, start = self._take(self.batch_size)
            self._spool_events(moved, start)
            log.warning("analytics buffer full: spooled %d events to %s", len(moved), self.spool)

    def flush(self, timeout: float | None = None) -> None:
        """Deliver (or spool) everything recorded before this call; retry a down target now."""
        if not self._thread.is_alive():
            self._drain_inline()
            return
        with self._cond:
            self._flush_requested += 1
            wanted = self._flush_requested
        self._wake.set()
        with self._cond:
            self._cond.wait_for(
                lambda: self._flushed >= wanted or not self._thread.is_alive(), timeout
            )

    def close(self) -> None:
        """Flush, stop the thread and release the connections. Safe to call twice."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=max(self._send_receive_timeout, 5.0))
        self._drain_inline()
        if self._journal is not None:
            self._journal.close(self._watermark.mark)
        self.spool.close()
        with self._clients_lock:
            for client in (self._writer, self._reader_client, self._admin_client):
                if client is not None:
                    try:
                        client.close()
                    except Exception:
                        log.debug("closing a ClickHouse client failed", exc_info=True)
            self._writer = self._reader_client = self._admin_client = None
        _live_sinks.discard(self)

    def _drain_inline(self) -> None:
        """Whatever the dead or stopped thread left behind goes to the spool."""
        while True:
            events, start = self._take(max(self.batch_size, len(self._buffer)))
            if not events:
                return
            self._spool_events(events, start)

    def stats(self) -> dict[str, Any]:
        """Counters since start: delivered, spooled, replayed, duplicates skipped, rejected."""
        with self._counts_lock:
            counts: dict[str, Any] = dict(self._counts)
        counts["buffered"] = len(self._buffer)
        counts["connected"] = self._writer is not None
        counts["spool_pending"] = self.spool.pending()
        counts["last_error"] = self._last_error
        journal = self._journal
        counts["journal"] = "off" if journal is None else journal.broken or "on"
        counts["journal_segments"] = 0 if journal is None else journal.pending()
        return counts

    def _tally(self, name: str, amount: int) -> None:
        with self._counts_lock:
            self._counts[name] += amount

    def _spool_events(self, events: list[Event], start: int | None = None) -> None:
        """Spool events (fsynced); ``start`` numbers them when they came from the buffer."""
        if events:
            self.spool.write(encode_json(events_to_columns(events)))
            self._tally("spooled", len(events))
            if start is not None:
                self._mark_settled(start, len(events))

    def _mark_settled(self, start: int, count: int) -> None:
        """These buffered events are stored or on disk: their journal may go."""
        mark = self._watermark.settled(start, count)
        if self._journal is not None:
            self._journal.release(mark)

    # -- the background thread ------------------------------------------------------
    def _flush_loop(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stopping
            with self._cond:
                wanted = self._flush_requested
            try:
                self._cycle(force=wanted > self._flushed or stopping)
                if self._journal is not None and not stopping:
                    self._journal.prepare()
            except Exception:
                log.exception("analytics flusher failed; events stay buffered or spooled")
                self._drain_inline()
            with self._cond:
                self._flushed = max(self._flushed, wanted)
                self._cond.notify_all()
            if stopping:
                return

    def _cycle(self, *, force: bool) -> None:
        if self._journal is not None:  # what was journaled so far goes once it settles
            self._journal.rotate()
            self._journal.release(self._watermark.mark)
        pending = len(self._buffer)
        if not pending and not self.spool.writing and not self.spool.pending():
            return
        ready = self._ensure_writer(force=force)
        if ready:
            self.spool.seal()
            if self.spool.pending():
                self._replay()
                ready = self._writer is not None
        self._pipeline(pending, ready)

    def _pipeline(self, pending: int, ready: bool) -> None:
        """Deliver ``pending`` events (and more while full batches keep arriving).

        Two stages overlap: while one batch's INSERT runs on a helper thread (the
        engine releases the interpreter lock), this thread pops and encodes the next,
        which is Python work. One insert is in flight at a time, so batches reach
        ClickHouse in order and a failure is settled before anything else is sent.
        The cycle may take up to ``max_buffer`` more events than were pending when it
        began, so a busy caller keeps the pipeline full, yet ``flush()`` still returns.
        """
        extra = self.max_buffer
        flight: Flight | None = None
        try:
            while pending > 0:
                batch, start = self._take(min(pending, self.batch_size))
                pending = pending - self.batch_size if batch else 0
                if pending <= 0 and extra >= self.batch_size and self._has_full_batch():
                    pending, extra = self.batch_size, extra - self.batch_size
                if not batch:
                    break
                columns = events_to_columns(batch)
                encoded = None
                if ready:
                    try:
                        encoded = encode(columns)
                    except BatchTypeError:
                        encoded = None
                if flight is not None:
                    ready, flight = self._settle(flight), None
                if not ready:
                    self._spool_columns(columns)
                    self._mark_settled(start, len(batch))
                elif encoded is None:
                    ready = self._deliver_cleaned(columns, BatchTypeError("a value did not fit"))
                    self._mark_settled(start, len(batch))
                elif pending > 0:
                    flight = Flight.start(self._send, columns, encoded, self._writer, start)
                else:
                    ready = self._settle(
                        Flight.run_here(self._send, columns, encoded, self._writer, start)
                    )
        finally:  # even when this thread fails, the batch in flight is accounted for
            if flight is not None:
                self._settle(flight)

    def _has_full_batch(self) -> bool:
        return len(self._buffer) >= self.batch_size

    def _take(self, count: int) -> tuple[list[Event], int]:
        """Up to ``count`` events from the buffer, and the number of the first one."""
        batch: list[Event] = []
        with self._pop_lock:  # one taker at a time, so the numbers match the buffer's order
            popleft = self._buffer.popleft
            try:
                for _ in range(count):
                    batch.append(popleft())
            except IndexError:  # drained inline by close() meanwhile
                pass
            start = self._popped
            self._popped += len(batch)
        return batch, start

    def _settle(self, flight: Flight) -> bool:
        """One insert's outcome: delivered, spooled (target down), or cleaned and retried."""
        flight.wait()
        columns = flight.columns
        if flight.error is None:
            self._tally("delivered", len(columns[0]))
            ready = True
        elif self._target_is_down(flight.error):
            self._mark_down(flight.error)
            self._spool_columns(columns)
            ready = False
        else:
            ready = self._deliver_cleaned(columns, flight.error)
        self._mark_settled(flight.first, len(columns[0]))
        return ready

    def _spool_columns(self, columns: Columns) -> None:
        self.spool.write(encode_json(columns))
        self._tally("spooled", len(columns[0]))

    def _deliver_cleaned(self, columns: Columns, first: BaseException) -> bool:
        """A batch that did not fit, or that ClickHouse refused: coerce every value, then reject."""
        cleaned = clean_columns(columns)
        try:
            self._insert(cleaned)
            self._tally("delivered", len(cleaned[0]))
            return True
        except Exception as exc:  # noqa: BLE001 - kept on disk, never dropped
            if self._target_is_down(exc):
                self._mark_down(exc)
                self.spool.write(encode_json(cleaned))
                self._tally("spooled", len(cleaned[0]))
                return False
            reason = exc if isinstance(exc, ClickHouseError) else first
            self._reject(encode_json(cleaned), len(cleaned[0]), reason)
            return True

    def _reject(self, body: bytes, count: int, exc: BaseException) -> None:
        reason = redact_text(f"{type(exc).__name__}: {exc}", self.url.secret)[:2000]
        path = self.spool.reject(body, reason)
        self._tally("rejected", count)
        log.error("ClickHouse refused %d events (%s); kept in %s", count, reason[:200], path)

    def _insert(self, columns: Columns, client: Any = None) -> None:
        """Encode and send one batch on this thread (replay, backfill, the cleaned retry)."""
        self._send(encode(columns), client)

    def _send(self, encoded: Encoded, client: Any = None) -> None:
        send_batch(client or self._writer, self.layout, encoded)

    def _target_is_down(self, exc: BaseException, client: Any = None) -> bool:
        if not target_error(exc):
            return False
        try:
            (client or self._writer).command("SELECT 1")
        except Exception:  # noqa: BLE001 - the probe failing is the answer
            return True
        return False

    def _mark_down(self, exc: BaseException) -> None:
        self._failures += 1
        message = redact_text(f"{type(exc).__name__}: {exc}", self.url.secret).splitlines()
        self._last_error = message[0][:300] if message else type(exc).__name__
        if self._failures == 1:
            log.warning(
                "analytics target %s unavailable (%s); spooling to %s",
                self.url.redacted,
                self._last_error,
                self.spool.directory,
            )
        delay = min(60.0, self.retry_interval * 2 ** min(self._failures - 1, 10))
        self._next_attempt = time.monotonic() + random.uniform(delay / 2, delay)
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:
                log.debug("closing a broken ClickHouse client", exc_info=True)

    def _ensure_writer(self, *, force: bool) -> bool:
        if self._writer is not None:
            return True
        if not force and time.monotonic() < self._next_attempt:
            return False
        try:
            client = self._connect()
            self._check_schema(client)
        except Exception as exc:  # noqa: BLE001 - spooling until the target returns
            self._writer = None
            self._mark_down(exc)
            return False
        self._writer = client
        if self._failures:
            log.warning("analytics target %s is back; replaying the spool", self.url.redacted)
        self._failures = 0
        self._last_error = None
        self.spool.seal()
        return True

    def _check_schema(self, client: Any) -> None:
        version = current_version(client, self.layout)
        if version is not None and version >= LATEST:
            return
        if not self.auto_migrate:
            raise SchemaOutOfDate(
                None if version is None else str(version), str(LATEST), url=self.url.redacted
            )
        upgrade(client, self.layout)

    # -- replay ----------------------------------------------------------------------
    def _replay(self) -> None:
        for claimed in self.spool.claim():
            if not self._replay_file(claimed):
                self.spool.release(claimed)
                return
            self.spool.done(claimed)

    def _replay_file(self, claimed: Claimed) -> bool:
        for columns in self.spool.batches(claimed):
            try:
                self.replay_columns(columns)
            except Exception as exc:  # noqa: BLE001 - classified: retry later, or reject
                if self._writer is None or self._target_is_down(exc):
                    self._mark_down(exc)
                    return False
                self._reject(encode_json(columns), len(columns[0]), exc)
        return True

    def replay_columns(self, columns: Columns) -> int:
        """Insert a spooled batch minus the ids already stored; returns how many were new.

        Checking ids (not only the batch token) is what makes replay exact: a batch
        that reached ClickHouse before its answer was lost, a file replayed twice after
        a crash, or a spool moved to another server all come out without duplicates.
        Runs on the flusher's connection, or the admin one when called directly.
        """
        client = self._writer if self._writer is not None else self._admin()
        fresh, count = unstored(
            columns, lambda ids, span: stored_ids(client, self.layout, ids, span, chdb=self.chdb)
        )
        self._tally("duplicates", len(columns[0]) - count)
        if not count:
            return 0
        try:
            self._insert(fresh, client)
        except Exception as exc:
            if not isinstance(exc, BatchTypeError) and self._target_is_down(exc, client):
                raise
            self._insert(clean_columns(fresh), client)
        self._tally("replayed", count)
        return count

    # -- connections -----------------------------------------------------------------
    def _connect(self, *, readonly: bool = False) -> Any:
        return connect(
            self.url,
            readonly=readonly,
            verify=self._verify,
            connect_timeout=self._connect_timeout,
            send_receive_timeout=self._send_receive_timeout,
        )

    def _reader(self) -> Any:
        with self._clients_lock:
            if self._reader_client is None:
                self._reader_client = self._connect(readonly=True)
            return self._reader_client

    def _admin(self) -> Any:
        with self._clients_lock:
            if self._admin_client is None:
                self._admin_client = self._connect()
            return self._admin_client

    def run_query(
        self, sql: str, parameters: Mapping[str, Any], *, readonly: bool = True
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """One query (read-only session by default); see :class:`~praisondb.analytics.QuerySource`."""
        client = self._reader() if readonly else self._admin()
        return query_target(client, sql, parameters, self.url)

    # -- administration --------------------------------------------------------------
    def ping(self) -> None:
        """One round trip on a fresh path; BackendUnavailable when ClickHouse does not answer."""
        ping_target(self._reader(), self.url)

    def schema_version(self) -> int | None:
        return current_version(self._admin(), self.layout)

    def upgrade(self) -> list[int]:
        """Apply pending migrations (``praisondb analytics upgrade``); returns their numbers."""
        return [m.version for m in upgrade(self._admin(), self.layout)]

    def admin_client(self) -> Any:
        """A writable clickhouse-connect client for maintenance commands (backfill, retention)."""
        return self._admin()

    def insert_now(self, events: list[Event]) -> None:
        """Insert synchronously on the caller's thread, bypassing the buffer (for backfill).

        Raises :class:`BackendUnavailable` when ClickHouse cannot take them; nothing is
        spooled, because the caller still has the source and can simply run again.
        """
        if not events:
            return
        columns = events_to_columns(events)
        try:
            try:
                self._insert(columns, self._admin())
            except BatchTypeError:
                self._insert(clean_columns(columns), self._admin())
        except PraisonDBError:
            raise
        except ClickHouseError as exc:
            raise BackendUnavailable(
                f"analytics insert failed: {first_line(exc, self.url)}", url=self.url.redacted
            ) from exc

    def ensure_schema(self) -> None:
        """Create or upgrade the schema if ``auto_migrate``, else raise SchemaOutOfDate."""
        self._check_schema(self._admin())
