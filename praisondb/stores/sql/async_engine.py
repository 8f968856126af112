"""The async face's SQL engine: SQLAlchemy's async engine, seen through its sync face.

``create`` makes ``create_async_engine(...)`` on the async driver of the database
(aiosqlite, psycopg's AsyncConnection, aiomysql) and returns its ``sync_engine``: the
store runs its one implementation on it, in the async face's greenlets, where the
adapted DBAPI connections hand every driver await to the event loop (``await_only``).

What the async drivers lack next to their sync twins is made up for here:

- the pool hands a returned connection to the call that has waited longest for one
  (:class:`FairPool`). SQLAlchemy's asyncio queue lets the call that returned it take it
  straight back: a task appending in a loop never yields between two calls, so tasks
  beyond the pool's size starved until ``pool_timeout`` (threads take turns anyway).

- aiomysql has no ``read_timeout``: PyMySQL's option (and ``connect_timeout`` during the
  handshake) is applied to each packet read, failing the same way PyMySQL does (the
  connection closed, error 2013), so a silent server is reported, not waited on forever.
  ``write_timeout`` is accepted and has nothing to bound: asyncio buffers writes, and a
  server that stops reading stops replying too, which the read timeout catches.
- greenlets of one loop share its thread, so a threading lock cannot keep two calls off
  in-memory SQLite's one connection: :class:`GreenletLock` can.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, StaticPool
from sqlalchemy.util.concurrency import await_only
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

from ...errors import ConfigError
from ...urls import StoreURL

DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    # create_async_engine picks psycopg's async dialect (psycopg_async) for this name
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+aiomysql",
}
EXTRAS = {"aiosqlite": "async", "greenlet": "async", "aiomysql": "mysql"}
"""The pip extra of each module only the async face needs (psycopg, PyMySQL: the URL's)."""


def create(target: URL, kwargs: dict[str, Any]) -> Engine:
    """The sync face of SQLAlchemy's async engine for ``target`` (an async driver URL)."""
    import greenlet  # type: ignore[import-untyped]  # noqa: F401 - else: at first await
    from sqlalchemy.ext.asyncio import create_async_engine

    kwargs = dict(kwargs)
    if kwargs.get("poolclass") is not StaticPool:
        kwargs["poolclass"] = FairPool
    if target.get_backend_name() in ("mysql", "mariadb"):
        kwargs["connect_args"] = {**kwargs["connect_args"], "async_creator_fn": _mysql}
    return create_async_engine(target, **kwargs).sync_engine


def missing_driver(url: StoreURL, exc: ImportError) -> ConfigError:
    """A driver is not installed: the error names the extra that installs it."""
    extra = EXTRAS.get((exc.name or "").split(".")[0])
    if extra is None:
        return url.missing_driver(exc)
    return ConfigError(
        f"{url.redacted} needs {exc.name} for the async face, which is not installed; "
        f"run: pip install 'praisondb[{extra}]'"
    )


# -- a pool that serves its waiters in turn ---------------------------------------------------


class FairQueue(AsyncAdaptedQueue[Any]):
    """SQLAlchemy's asyncio pool queue, handing each returned connection to the oldest
    waiter (see the module docstring); a waiter that gives up passes a connection it was
    handed on to the next."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self.give_back: Callable[[Any], None] = self.put_nowait
        """How a connection handed to a waiter that gave up goes back: the pool's own
        return, which closes an overflow connection the queue has no room for."""

    def put_nowait(self, item: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block or not self.empty():  # nobody waits while connections are idle
            return super().get(block, timeout)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await_only(asyncio.wait({waiter}, timeout=timeout))
        except BaseException:
            self._give_up(waiter)
            raise
        if not waiter.done():
            self._give_up(waiter)
            raise Empty()
        return waiter.result()

    def _give_up(self, waiter: asyncio.Future[Any]) -> None:
        if waiter.done() and not waiter.cancelled():
            self.give_back(waiter.result())  # handed over just now: to the next one
        else:
            waiter.cancel()  # put_nowait skips it


class FairPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool with :class:`FairQueue`."""

    _queue_class = FairQueue

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        queue = self._pool
        assert isinstance(queue, FairQueue)
        queue.give_back = self._do_return_conn


# -- aiomysql with PyMySQL's timeouts --------------------------------------------------------


async def _mysql(
    *args: Any,
    read_timeout: float | None = None,
    write_timeout: float | None = None,  # see the module docstring
    **kwargs: Any,
) -> Any:
    """``aiomysql.connect`` taking PyMySQL's timeouts (SQLAlchemy's ``async_creator_fn``)."""
    cls = _timed_connection()
    # An option aiomysql does not take fails here, before a half-made connection exists
    # (whose __del__ would then complain about attributes it never set).
    inspect.signature(cls).bind(*args, **kwargs)
    connection = cls(*args, **kwargs)
    connection.praisondb_timeout = kwargs.get("connect_timeout")
    await connection._connect()
    connection.praisondb_timeout = read_timeout
    return connection


@functools.cache
def _timed_connection() -> type[Any]:
    """aiomysql's Connection whose packet reads give up after ``praisondb_timeout``."""
    from aiomysql.connection import Connection, MysqlPacket
    from pymysql.constants import CR
    from pymysql.err import OperationalError

    class TimedConnection(Connection):  # type: ignore[misc]
        praisondb_timeout: float | None = None

        async def _read_packet(self, packet_type: Any = MysqlPacket) -> Any:
            timeout = self.praisondb_timeout
            if not timeout:
                return await super()._read_packet(packet_type)
            try:
                return await _bounded(super()._read_packet(packet_type), float(timeout))
            except (asyncio.TimeoutError, TimeoutError):
                self.close()  # a reply may still come: the connection is out of step now
                raise OperationalError(
                    CR.CR_SERVER_LOST, "Lost connection to MySQL server during query (timed out)"
                ) from None

    return TimedConnection


async def _bounded(awaitable: Any, timeout: float) -> Any:
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):  # no task per read, unlike wait_for
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)


# -- one connection, many greenlets ------------------------------------------------------------


class GreenletLock:
    """A reentrant lock for the greenlets of one event loop (the async face's calls).

    A threading lock cannot serialise them: they all run on the loop's thread, so an
    RLock lets a second call walk into the shared connection while the first awaits
    I/O (and a plain Lock would deadlock the loop). A waiter here awaits an
    :class:`asyncio.Lock` through ``await_only``, so the loop serves others meanwhile,
    and a waiter cancelled while queued takes nothing.
    """

    def __init__(self) -> None:
        from greenlet import getcurrent

        self._lock = asyncio.Lock()
        self._await = await_only
        self._current = getcurrent
        self._owner: object = None
        self._depth = 0

    def __enter__(self) -> None:
        me = self._current()
        if self._owner is not me:
            self._await(self._lock.acquire())
            self._owner = me
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if not self._depth:
            self._owner = None
            self._lock.release()


# -- aiosqlite, one thread round trip per statement ------------------------------------------


class AiosqliteCursor:
    """The few cursor calls the fast path makes, straight on aiosqlite's connection.

    SQLAlchemy's adapted cursor costs aiosqlite thread round trips of its own: opening
    the cursor, a separate fetch after each statement that returns rows, closing it (an
    append took seven). ``execute_fetchall`` runs a statement and fetches its rows in one,
    so an append costs its four statements. Errors come out as the adapted connection
    raises them (SQLAlchemy's DBAPI classes), which the fast path catches.
    """

    __slots__ = ("_adapted", "_conn", "_rows")

    def __init__(self, adapted: Any) -> None:
        self._adapted = adapted
        self._conn = adapted.driver_connection
        self._rows: list[Any] = []

    def execute(self, sql: str, parameters: Any = ()) -> None:
        try:
            self._rows = list(await_only(self._conn.execute_fetchall(sql, parameters)))
        except Exception as exc:  # noqa: BLE001 - translated and raised, as SQLAlchemy does
            self._adapted._handle_exception(exc)

    def executemany(self, sql: str, rows: Any) -> None:
        self._rows = []
        try:
            await_only(self._conn.executemany(sql, rows))
        except Exception as exc:  # noqa: BLE001 - translated and raised, as SQLAlchemy does
            self._adapted._handle_exception(exc)

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def close(self) -> None:
        self._rows = []


__all__ = [
    "DRIVERS",
    "EXTRAS",
    "AiosqliteCursor",
    "FairPool",
    "GreenletLock",
    "create",
    "missing_driver",
]
