"""ClickHouse analytics sink: a server over HTTP, or the embedded engine (``chdb://``).

The caller's cost is one ``deque.append``: :meth:`ClickHouseSink.record` never does I/O.
A daemon thread drains the buffer in batches (by size or every ``flush_interval``),
inserts each batch with an insert-deduplication token derived from its event ids, and
when ClickHouse cannot be reached writes the batch to the spool
(:mod:`praisondb.analytics_spool`). When ClickHouse answers again the spool is
replayed, skipping ids already stored, so no event is lost and none is stored twice.

Buffer full (``max_buffer`` events waiting, i.e. ClickHouse or the disk cannot keep
up): ``record`` blocks up to ``block_timeout`` seconds for the flusher to make room,
then moves the oldest batch to the spool itself and carries on. Events are never
dropped; the price of overload is caller latency, then disk.

URL forms: ``clickhouse://user:pass@host:8123/database``, ``clickhouses://`` (TLS, 8443),
``http(s)://host:port``, ``chdb:///abs/dir`` and ``chdb://memory``. Options (keyword or
URL query): ``database``, ``cluster``, ``ttl_days``, ``auto_migrate`` (default: on for
chdb, off for servers), ``spool_dir``, ``batch_size``, ``flush_interval``,
``max_buffer``, ``block_timeout``, ``retry_interval``, ``connect_timeout``,
``send_receive_timeout``, ``verify``.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import math
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
import orjson
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from ..analytics import ReadyQueries
from ..analytics_schema import (
    DEFAULT_DATABASE,
    EVENT_COLUMNS,
    LATEST,
    Layout,
    current_version,
    upgrade,
)
from ..analytics_spool import Claimed, Columns, Spool
from ..errors import (
    BackendUnavailable,
    ConfigError,
    PraisonDBError,
    SchemaOutOfDate,
    ValidationError,
)
from ..model import Event
from ..urls import StoreURL, redact_text

log = logging.getLogger("praisondb.analytics")

_UINT64_MAX = 2**64 - 1
_ID_CHECK_CHUNK = 2000
_DEFAULT_PORTS = {"clickhouse": 8123, "http": 8123, "clickhouses": 8443, "https": 8443}
_MEMORY_PATHS = {"", "memory", ":memory:"}

_OPTION_TYPES: dict[str, Callable[[Any], Any]] = {
    "database": str,
    "cluster": str,
    "ttl_days": int,
    "spool_dir": str,
    "batch_size": int,
    "flush_interval": float,
    "max_buffer": int,
    "block_timeout": float,
    "retry_interval": float,
    "connect_timeout": float,
    "send_receive_timeout": float,
}
_BOOL_OPTIONS = {"auto_migrate", "verify"}

_live_sinks: weakref.WeakSet[ClickHouseSink] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for sink in list(_live_sinks):
        try:
            sink.close()
        except Exception:
            log.exception("closing analytics sink at exit")


atexit.register(_close_all_at_exit)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"option {name} must be true or false, not {value!r}")


def parse_options(url: StoreURL, options: Mapping[str, Any]) -> dict[str, Any]:
    """URL query options, overridden by keyword options; unknown names are ConfigErrors."""
    merged: dict[str, Any] = {**url.options, **options}
    parsed: dict[str, Any] = {}
    for name, value in merged.items():
        if name in _BOOL_OPTIONS:
            parsed[name] = None if value is None else _as_bool(name, value)
        elif name in _OPTION_TYPES:
            try:
                parsed[name] = None if value is None else _OPTION_TYPES[name](value)
            except (TypeError, ValueError):
                raise ConfigError(f"option {name} has an invalid value {value!r}") from None
        else:
            known = ", ".join(sorted([*_OPTION_TYPES, *_BOOL_OPTIONS]))
            raise ConfigError(f"unknown analytics option {name!r}; known: {known}")
    for name in ("batch_size", "max_buffer"):
        if name in parsed and parsed[name] is not None and parsed[name] < 1:
            raise ConfigError(f"option {name} must be at least 1")
    for name in ("flush_interval", "block_timeout", "retry_interval", "connect_timeout"):
        value = parsed.get(name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"option {name} must be a non-negative number of seconds")
    return parsed


def default_spool_dir(url: StoreURL, database: str) -> Path:
    """Beside the chdb directory, else in the user's cache directory (one per server)."""
    if url.scheme == "chdb" and url.path not in _MEMORY_PATHS:
        path = Path(url.path).expanduser().resolve()
        return path.parent / f"{path.name}-spool"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parts = urlsplit(url.secret)
    where = f"{parts.hostname or 'memory'}_{parts.port or ''}_{database}"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in where)
    return cache / "praisondb" / "analytics-spool" / safe


def _target_error(exc: BaseException) -> bool:
    """Failures that say ClickHouse is not there (as opposed to refusing our data)."""
    return isinstance(exc, (ClickHouseError, OSError))


def _token(ids: list[str]) -> str:
    """A batch's insert-deduplication token: the same ids give the same token."""
    digest = hashlib.blake2b(digest_size=16)
    for event_id in ids:
        digest.update(event_id.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return "pdb-" + digest.hexdigest()


_INSERT = (
    "INSERT INTO {db:Identifier}.{t:Identifier} (" + ", ".join(EVENT_COLUMNS) + ") "
    "SETTINGS insert_deduplication_token = '%s', date_time_input_format = 'best_effort', "
    "input_format_json_read_objects_as_strings = 1%s FORMAT JSONCompactColumns"
)
"""The only insert: a JSONCompactColumns body, so the spool holds exactly what was sent.

The token is our own hex digest, the only text formatted in; the table is bound."""


def events_to_columns(batch: list[Event]) -> Columns:
    """The fast path: one comprehension per column, no per-event function call."""
    return [
        [e.id for e in batch],
        [e.ts for e in batch],
        [e.type for e in batch],
        [e.session_id for e in batch],
        [e.user_id for e in batch],
        [e.agent for e in batch],
        [e.model for e in batch],
        [e.role for e in batch],
        [e.input_tokens for e in batch],
        [e.output_tokens for e in batch],
        [e.latency_ms for e in batch],
        [e.tool for e in batch],
        [e.status for e in batch],
        [e.attributes for e in batch],
    ]


def encode(columns: Columns) -> bytes:
    """A JSONCompactColumns body; falls back to coercing every value when orjson refuses."""
    try:
        return orjson.dumps(columns, option=orjson.OPT_NAIVE_UTC)
    except TypeError:
        return orjson.dumps(clean_columns(columns), option=orjson.OPT_NAIVE_UTC)


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be stored anywhere
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _count(value: Any) -> int:
    try:
        return min(max(int(value or 0), 0), _UINT64_MAX)
    except (TypeError, ValueError, OverflowError):
        return 0


def _number(value: Any) -> float:
    try:
        number = float(value or 0.0)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _timestamp(value: Any) -> str:
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return stamp.isoformat()
    if isinstance(value, str):
        try:
            return _timestamp(datetime.fromisoformat(value))
        except ValueError:
            pass
    return datetime.now(timezone.utc).isoformat()


def _attributes(value: Any) -> str:
    if not value:
        return "{}"
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return orjson.dumps({"unserializable": _text(repr(value))[:1000]}).decode()


_CLEANERS: tuple[Callable[[Any], Any], ...] = (
    _text,
    _timestamp,
    _text,
    _text,
    _text,
    _text,
    _text,
    _text,
    _count,
    _count,
    _number,
    _text,
    _text,
    _attributes,
)


def clean_columns(columns: Columns) -> Columns:
    """Every value coerced to its column's type: the retry for a batch ClickHouse refused."""
    return [[clean(v) for v in column] for clean, column in zip(_CLEANERS, columns, strict=True)]


def _parse_ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


class ClickHouseSink(ReadyQueries):
    """Batches events into ClickHouse from a background thread; also serves the ready queries."""

    def __init__(self, url: StoreURL, **options: Any) -> None:
        opts = parse_options(url, options)
        self.url = url
        database = opts.get("database") or self._database_from_path(url) or DEFAULT_DATABASE
        self.layout = Layout(database, opts.get("cluster") or None, opts.get("ttl_days"))
        self.chdb = url.scheme == "chdb"
        auto = opts.get("auto_migrate")
        self.auto_migrate: bool = self.chdb if auto is None else auto
        self.batch_size: int = opts.get("batch_size") or 10_000
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
        self._check_target()

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

    @staticmethod
    def _database_from_path(url: StoreURL) -> str | None:
        if url.scheme == "chdb":
            return None
        name = url.path.strip("/")
        return name or None

    def _check_target(self) -> None:
        if not self.chdb:
            parts = urlsplit(self.url.secret)
            try:
                parts.port  # noqa: B018 - raises on a malformed port
            except ValueError:
                raise ConfigError(f"invalid port in {self.url.redacted}") from None
            if not parts.hostname:
                raise ConfigError(f"{self.url.redacted} names no host")

    # -- the caller's side ----------------------------------------------------------
    def record(self, event: Event) -> None:
        """Queue one event; never does I/O unless the buffer is full (see module doc)."""
        buffer = self._buffer
        if self._closed or len(buffer) >= self.max_buffer:
            self._overflow(event)
            return
        buffer.append(event)
        if len(buffer) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _overflow(self, event: Event) -> None:
        if self._closed:
            self._spool_events([event])
            return
        deadline = time.monotonic() + self.block_timeout
        self._wake.set()
        while len(self._buffer) >= self.max_buffer and time.monotonic() < deadline:
            time.sleep(0.001)
        if len(self._buffer) >= self.max_buffer:
            moved: list[Event] = []
            try:
                for _ in range(self.batch_size):
                    moved.append(self._buffer.popleft())
            except IndexError:  # the flusher took the rest meanwhile
                pass
            self._spool_events(moved)
            log.warning("analytics buffer full: spooled %d events to %s", len(moved), self.spool)
        self._buffer.append(event)

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
        events: list[Event] = []
        while True:
            try:
                events.append(self._buffer.popleft())
            except IndexError:
                break
        self._spool_events(events)

    def stats(self) -> dict[str, Any]:
        """Counters since start: delivered, spooled, replayed, duplicates skipped, rejected."""
        with self._counts_lock:
            counts: dict[str, Any] = dict(self._counts)
        counts["buffered"] = len(self._buffer)
        counts["connected"] = self._writer is not None
        counts["spool_pending"] = self.spool.pending()
        counts["last_error"] = self._last_error
        return counts

    def _tally(self, name: str, amount: int) -> None:
        with self._counts_lock:
            self._counts[name] += amount

    def _spool_events(self, events: list[Event]) -> None:
        if events:
            self.spool.write(encode(events_to_columns(events)))
            self._tally("spooled", len(events))

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
            except Exception:
                log.exception("analytics flusher failed; events stay buffered or spooled")
                self._drain_inline()
            with self._cond:
                self._flushed = max(self._flushed, wanted)
                self._cond.notify_all()
            if stopping:
                return

    def _cycle(self, *, force: bool) -> None:
        pending = len(self._buffer)
        if not pending and not self.spool.writing and not self.spool.pending():
            return
        ready = self._ensure_writer(force=force)
        if ready:
            self.spool.seal()
            if self.spool.pending():
                self._replay()
                ready = self._writer is not None
        while pending > 0:
            take = min(pending, self.batch_size)
            batch: list[Event] = []
            try:
                for _ in range(take):
                    batch.append(self._buffer.popleft())
            except IndexError:
                pending = 0
            pending -= take
            if batch:
                ready = self._deliver(events_to_columns(batch), ready)

    def _deliver(self, columns: Columns, ready: bool) -> bool:
        """Insert one batch, or spool it; returns whether the target is still up."""
        body = encode(columns)
        if ready:
            try:
                self._insert(body, columns[0])
                self._tally("delivered", len(columns[0]))
                return True
            except Exception as exc:  # noqa: BLE001 - classified below, never lost
                if self._target_is_down(exc):
                    self._mark_down(exc)
                else:
                    return self._deliver_cleaned(columns, exc)
        self.spool.write(body)
        self._tally("spooled", len(columns[0]))
        return False

    def _deliver_cleaned(self, columns: Columns, first: BaseException) -> bool:
        """A batch ClickHouse refused while answering: coerce every value, then reject."""
        cleaned = clean_columns(columns)
        body = orjson.dumps(cleaned)
        try:
            self._insert(body, cleaned[0])
            self._tally("delivered", len(cleaned[0]))
            return True
        except Exception as exc:  # noqa: BLE001 - kept on disk, never dropped
            if self._target_is_down(exc):
                self._mark_down(exc)
                self.spool.write(body)
                self._tally("spooled", len(cleaned[0]))
                return False
            self._reject(body, len(cleaned[0]), exc if isinstance(exc, ClickHouseError) else first)
            return True

    def _reject(self, body: bytes, count: int, exc: BaseException) -> None:
        reason = redact_text(f"{type(exc).__name__}: {exc}", self.url.secret)[:2000]
        path = self.spool.reject(body, reason)
        self._tally("rejected", count)
        log.error("ClickHouse refused %d events (%s); kept in %s", count, reason[:200], path)

    def _insert(self, body: bytes, ids: list[Any], client: Any = None) -> None:
        extra = ", distributed_foreground_insert = 1" if self.layout.cluster else ""
        (client or self._writer).command(
            _INSERT % (_token([_text(i) for i in ids]), extra),
            parameters={"db": self.layout.database, "t": "events"},
            data=body,
        )

    def _target_is_down(self, exc: BaseException) -> bool:
        if not _target_error(exc):
            return False
        try:
            self._writer.command("SELECT 1")
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
                self._reject(orjson.dumps(columns), len(columns[0]), exc)
        return True

    def replay_columns(self, columns: Columns) -> int:
        """Insert a spooled batch minus the ids already stored; returns how many were new.

        Checking ids (not only the batch token) is what makes replay exact: a batch
        that reached ClickHouse before its answer was lost, a file replayed twice after
        a crash, or a spool moved to another server all come out without duplicates.
        """
        ids = [_text(i) for i in columns[0]]
        seen: set[str] = set()
        keep: list[int] = []
        for index, event_id in enumerate(ids):
            if event_id not in seen:
                seen.add(event_id)
                keep.append(index)
        stored = self._stored_ids([ids[i] for i in keep], [columns[1][i] for i in keep])
        keep = [i for i in keep if ids[i] not in stored]
        self._tally("duplicates", len(ids) - len(keep))
        if not keep:
            return 0
        fresh = [[column[i] for i in keep] for column in columns]
        try:
            self._insert(orjson.dumps(fresh), fresh[0])
        except Exception as exc:
            if self._target_is_down(exc):
                raise
            fresh = clean_columns(fresh)
            self._insert(orjson.dumps(fresh), fresh[0])
        self._tally("replayed", len(keep))
        return len(keep)

    def _stored_ids(self, ids: list[str], stamps: list[Any]) -> set[str]:
        parsed = [t for t in (_parse_ts(s) for s in stamps) if t is not None]
        if not parsed or len(parsed) != len(stamps):
            low, high = 0, 2**62  # an unreadable time: check ids over all time
        else:
            low = int(min(parsed).timestamp() * 1_000_000) - 1
            high = int(max(parsed).timestamp() * 1_000_000) + 1
        found: set[str] = set()
        for start in range(0, len(ids), _ID_CHECK_CHUNK):
            result = self._writer.query(
                "SELECT id FROM {db:Identifier}.{t:Identifier} "
                "WHERE ts >= fromUnixTimestamp64Micro({low:Int64}, 'UTC') "
                "AND ts <= fromUnixTimestamp64Micro({high:Int64}, 'UTC') "
                "AND id IN {ids:Array(String)}",
                parameters={
                    "db": self.layout.database,
                    "t": "events",
                    "low": low,
                    "high": high,
                    "ids": ids[start : start + _ID_CHECK_CHUNK],
                },
            )
            found.update(row[0] for row in result.result_rows)
        return found

    # -- connections -----------------------------------------------------------------
    def _connect(self, *, readonly: bool = False) -> Any:
        """A new clickhouse-connect client; errors come out redacted."""
        settings = {"readonly": 2} if readonly else None
        try:
            if self.chdb:
                path = (
                    None
                    if self.url.path in _MEMORY_PATHS
                    else str(Path(self.url.path).expanduser())
                )
                if path:
                    Path(path).mkdir(parents=True, exist_ok=True)
                return clickhouse_connect.get_client(interface="chdb", path=path, settings=settings)
            parts = urlsplit(self.url.secret)
            scheme = self.url.scheme
            return clickhouse_connect.get_client(
                host=parts.hostname,
                port=parts.port or _DEFAULT_PORTS[scheme],
                username=unquote(parts.username) if parts.username else "default",
                password=unquote(parts.password) if parts.password else "",
                secure=scheme in {"clickhouses", "https"},
                verify=self._verify,
                connect_timeout=self._connect_timeout,
                send_receive_timeout=self._send_receive_timeout,
                query_retries=0,
                autogenerate_session_id=False,
                settings=settings,
            )
        except PraisonDBError:
            raise
        except Exception as exc:
            text = redact_text(f"{type(exc).__name__}: {exc}", self.url.secret)
            first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
            if self.chdb and ("EmbeddedServer" in text or "different path" in text):
                first = (
                    "the chdb directory is open in another process, or this process already "
                    "opened a different chdb directory (one chdb directory per process); " + first
                )
            raise BackendUnavailable(
                f"cannot open ClickHouse: {first}", url=self.url.redacted
            ) from exc

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

    def _select(
        self, sql: str, parameters: Mapping[str, Any], *, readonly: bool = True
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        client = self._reader() if readonly else self._admin()
        try:
            result = client.query(sql, parameters=dict(parameters))
        except ClickHouseError as exc:
            text = redact_text(str(exc), self.url.secret).strip().splitlines()
            message = text[0][:500] if text else type(exc).__name__
            if isinstance(exc, OperationalError):
                raise BackendUnavailable(
                    f"analytics query failed: {message}", url=self.url.redacted
                ) from exc
            if getattr(exc, "code", None) == 164:
                raise ValidationError(f"read-only analytics query refused: {message}") from exc
            raise ValidationError(f"analytics query failed: {message}") from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    # -- administration --------------------------------------------------------------
    def ping(self) -> None:
        """One round trip on a fresh path; BackendUnavailable when ClickHouse does not answer."""
        try:
            self._reader().command("SELECT 1")
        except PraisonDBError:
            raise
        except Exception as exc:
            text = redact_text(str(exc), self.url.secret).strip().splitlines()
            raise BackendUnavailable(
                f"ClickHouse did not answer: {text[0][:300] if text else type(exc).__name__}",
                url=self.url.redacted,
            ) from exc

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
            self._insert(encode(columns), columns[0], self._admin())
        except PraisonDBError:
            raise
        except ClickHouseError as exc:
            text = redact_text(str(exc), self.url.secret).strip().splitlines()
            raise BackendUnavailable(
                f"analytics insert failed: {text[0][:300] if text else type(exc).__name__}",
                url=self.url.redacted,
            ) from exc

    def ensure_schema(self) -> None:
        """Create or upgrade the schema if ``auto_migrate``, else raise SchemaOutOfDate."""
        self._check_schema(self._admin())
