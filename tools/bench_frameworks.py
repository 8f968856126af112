"""Each agent framework's stock store against praisondb's, same workload, same backend, one run.

Usage: .venv/bin/python tools/bench_frameworks.py [--sections openai-agents,adk,praisonai]
       [--backends sqlite,postgres,redis] [--turns 2500] [--load 10000]

A section per framework (``SECTIONS``). Per store it prints:

- turns/s: ``add_items`` of one turn (a user and an assistant item), one turn at a
  time, while the session grows from 0 to ``2 * turns`` items;
- growth: the median turn time at ~5,000 items over the median at ~100 (1.00x: an append
  costs the same however long the session is);
- load: ms to read a 10,000-item session whole (median of 5).

Section adk (Google ADK session services): turns/s counts ``append_event`` of one
turn (a user and an agent event, the agent's with a state delta) while the session
grows to ``load`` events; growth compares the turn at ~5,000 events with ~100; load is
``get_session`` of that ``load``-event session; list is ``list_sessions`` of one
user's ``load`` sessions (median of 5 each).

Section praisonai (PraisonAI agents): a turn is what the Agent does per turn, a user and
an assistant message: ``add_message`` twice on praisonaiagents' stock store (its
``DefaultSessionStore``, JSON files, what an Agent with a ``session_id`` and no ``db``
uses, default settings) and ``on_user_message``/``on_agent_message`` on a ``PraisonDB``
(the hooks the Agent calls on its db). turns/s is at ~100 items (turns 25-75 of a new
session); growth compares the turn at ~5,000 items (after a bulk fill) with that; load
reads a ``load``-item session whole, median of 5: ``get_session`` from a new store object
(the stock store keeps 100 messages live, older turns summarised, the raw turns in an
archive in the same file) and ``on_agent_start`` (the Agent's resume call). The stock
store writes without fsync; praisondb's JSON store is measured with and without it.

Servers come from ``tools/services.sh env`` (``PRAISONDB_TEST_*_URL``); each store gets
a private database, directory or key prefix (tests/backends.py), removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.backends import BACKENDS

WINDOW = 50
TEXT = "The quick brown fox jumps over the lazy dog; agents talk a lot. " * 2


@dataclass
class Row:
    section: str
    backend: str
    store: str
    turns_per_s: float
    growth: float
    load_ms: float
    list_ms: float | None = None


# -- OpenAI Agents SDK ---------------------------------------------------------------------
def turn_items(n: int) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"{TEXT} #{n}"},
        {
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": f"{TEXT} reply {n}", "annotations": []}],
        },
    ]


SessionFactory = Callable[[str], Any]
"""session id -> an SDK Session (opened inside the event loop)."""


@contextlib.asynccontextmanager
async def sdk_stores(backend: str, url: str, tmp: Path) -> AsyncIterator[dict[str, SessionFactory]]:
    """The SDK's own stores for ``backend`` and praisondb's, each a session factory."""
    from praisondb.aio import AsyncPraisonDB
    from praisondb.integrations.openai_agents import PraisonDBSession

    stores: dict[str, SessionFactory] = {}
    closers: list[Callable[[], Any]] = []
    if backend == "sqlite":
        from agents import SQLiteSession
        from agents.extensions.memory import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        stores["SQLiteSession"] = lambda sid: SQLiteSession(sid, str(tmp / "sdk.db"))
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp / 'sdk-sqlalchemy.db'}")
        stores["SQLAlchemySession (aiosqlite)"] = lambda sid: SQLAlchemySession(
            sid, engine=engine, create_tables=True
        )
        closers.append(engine.dispose)
    elif backend in ("postgres", "mysql"):
        from agents.extensions.memory import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        driver = "postgresql+psycopg_async" if backend == "postgres" else "mysql+aiomysql"
        engine = create_async_engine(driver + "://" + url.split("://", 1)[1])
        stores[f"SQLAlchemySession ({driver.split('+')[1]})"] = lambda sid: SQLAlchemySession(
            sid, engine=engine, create_tables=True
        )
        closers.append(engine.dispose)
    elif backend == "redis":
        import redis.asyncio
        from agents.extensions.memory import RedisSession

        base, _, query = url.partition("?")
        client = redis.asyncio.Redis.from_url(base)
        prefix = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("prefix", "")
        stores["RedisSession"] = lambda sid: RedisSession(
            sid, redis_client=client, key_prefix=prefix + "sdk"
        )
        closers.append(client.aclose)
    db = AsyncPraisonDB(url, auto_migrate=True)
    stores["praisondb PraisonDBSession"] = lambda sid: PraisonDBSession(sid, db)
    closers.append(db.close)
    try:
        yield stores
    finally:
        for close in closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


async def measure_sdk_store(
    make: SessionFactory, turns: int, load: int
) -> tuple[float, float, float]:
    session = make(f"grow-{uuid.uuid4().hex[:8]}")
    await session.add_items(turn_items(-1))  # schema creation and connection warm-up
    await session.clear_session()
    times: list[float] = []
    started = time.perf_counter()
    for n in range(turns):
        t0 = time.perf_counter()
        await session.add_items(turn_items(n))
        times.append(time.perf_counter() - t0)
    rate = turns / (time.perf_counter() - started)
    early = statistics.median(times[50 - WINDOW // 2 : 50 + WINDOW // 2])  # ~100 items
    late = statistics.median(times[-WINDOW:])  # ~2 * turns items
    big = make(f"load-{uuid.uuid4().hex[:8]}")
    for start in range(0, load, 500):
        await big.add_items([i for n in range(start, start + 250) for i in turn_items(n)])
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        items = await big.get_items()
        samples.append(time.perf_counter() - t0)
        assert len(items) == load, (len(items), load)
    for s in (session, big):
        close = getattr(s, "close", None)
        if close is not None and not hasattr(s, "praisondb_session_id"):
            result = close()
            if asyncio.iscoroutine(result):
                await result
    return rate, late / early, statistics.median(samples) * 1000


def openai_agents(backends: list[str], turns: int, load: int) -> Iterator[Row]:
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp, BACKENDS[backend].factory(Path(tmp)) as url:

            async def run(url: str = url, tmp: str = tmp, backend: str = backend) -> list[Row]:
                rows = []
                async with sdk_stores(backend, url, Path(tmp)) as stores:
                    for name, make in stores.items():
                        rate, growth, load_ms = await measure_sdk_store(make, turns, load)
                        rows.append(Row("openai-agents", backend, name, rate, growth, load_ms))
                        print_row(rows[-1])
                return rows

            yield from asyncio.run(run())


# -- Google ADK ------------------------------------------------------------------------------
ServiceFactory = Callable[[], Any]
"""() -> an ADK session service (made inside the event loop)."""


@contextlib.asynccontextmanager
async def adk_services(backend: str, url: str, tmp: Path) -> AsyncIterator[dict[str, Any]]:
    """ADK's own services for ``backend`` and praisondb's, each made once."""
    from google.adk.sessions import DatabaseSessionService, InMemorySessionService

    from praisondb.aio import AsyncPraisonDB
    from praisondb.integrations.adk import PraisonDBSessionService

    services: dict[str, Any] = {}
    if backend == "sqlite":
        services["InMemorySessionService"] = InMemorySessionService()
        services["DatabaseSessionService (aiosqlite)"] = DatabaseSessionService(
            f"sqlite+aiosqlite:///{tmp / 'adk.db'}"
        )
    elif backend == "postgres":
        services["DatabaseSessionService (psycopg async)"] = DatabaseSessionService(
            "postgresql+psycopg://" + url.split("://", 1)[1]
        )
    elif backend == "mysql":
        services["DatabaseSessionService (aiomysql)"] = DatabaseSessionService(
            "mysql+aiomysql://" + url.split("://", 1)[1]
        )
    db = AsyncPraisonDB(url, auto_migrate=True)
    services["praisondb PraisonDBSessionService"] = PraisonDBSessionService(db)
    try:
        yield services
    finally:
        for service in services.values():
            close = getattr(service, "close", None)
            if close is not None:
                await close()
        await db.close()


def adk_turn(n: int) -> tuple[Any, Any]:
    from google.adk.events.event import Event
    from google.adk.events.event_actions import EventActions
    from google.genai import types

    asked = Event(
        invocation_id=f"inv-{n}",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text=f"{TEXT} #{n}")]),
    )
    answered = Event(
        invocation_id=f"inv-{n}",
        author="guide",
        content=types.Content(role="model", parts=[types.Part(text=f"{TEXT} reply {n}")]),
        actions=EventActions(state_delta={"turns": n}),
    )
    return asked, answered


async def median_ms(call: Callable[[], Any], check: Callable[[Any], None]) -> float:
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        result = await call()
        samples.append(time.perf_counter() - t0)
        check(result)
    return statistics.median(samples) * 1000


async def measure_adk_service(service: Any, load: int) -> tuple[float, float, float, float]:
    app, user = f"bench-{uuid.uuid4().hex[:8]}", "u"
    warm = await service.create_session(app_name=app, user_id="warm")
    await service.append_event(warm, adk_turn(-1)[0])  # schema creation, warm-up
    session = await service.create_session(app_name=app, user_id=user)
    turns = load // 2
    times: list[float] = []
    started = time.perf_counter()
    for n in range(turns):
        t0 = time.perf_counter()
        for event in adk_turn(n):
            await service.append_event(session, event)
        times.append(time.perf_counter() - t0)
    rate = turns / (time.perf_counter() - started)
    early = statistics.median(times[50 - WINDOW // 2 : 50 + WINDOW // 2])  # ~100 events
    mid = min(2500, len(times) - WINDOW // 2)  # ~5,000 events
    middle = statistics.median(times[mid - WINDOW // 2 : mid + WINDOW // 2])
    sid = session.id

    def loaded(got: Any) -> None:
        assert len(got.events) == turns * 2, len(got.events)

    load_ms = await median_ms(
        lambda: service.get_session(app_name=app, user_id=user, session_id=sid), loaded
    )
    lister = "lister"
    for _ in range(load):
        await service.create_session(app_name=app, user_id=lister, state={"n": 1})

    def listed(got: Any) -> None:
        assert len(got.sessions) == load, len(got.sessions)

    list_ms = await median_ms(lambda: service.list_sessions(app_name=app, user_id=lister), listed)
    return rate, middle / early, load_ms, list_ms


def adk(backends: list[str], turns: int, load: int) -> Iterator[Row]:
    del turns  # a session grows to ``load`` events: turns = load / 2
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp, BACKENDS[backend].factory(Path(tmp)) as url:

            async def run(url: str = url, tmp: str = tmp, backend: str = backend) -> list[Row]:
                rows = []
                async with adk_services(backend, url, Path(tmp)) as services:
                    for name, service in services.items():
                        rate, growth, load_ms, list_ms = await measure_adk_service(service, load)
                        rows.append(Row("adk", backend, name, rate, growth, load_ms, list_ms))
                        print_row(rows[-1])
                return rows

            yield from asyncio.run(run())


# -- PraisonAI -------------------------------------------------------------------------------
class StockStore:
    """praisonaiagents' DefaultSessionStore: JSON files, one read-modify-write per message."""

    def __init__(self, directory: Path) -> None:
        from praisonaiagents.session.store import DefaultSessionStore

        self.directory = directory
        self.store = DefaultSessionStore(session_dir=str(directory))

    def turn(self, sid: str, n: int) -> None:
        self.store.add_message(sid, "user", f"{TEXT} #{n}")
        self.store.add_message(sid, "assistant", f"{TEXT} reply {n}")

    def fill(self, sid: str, turns: range) -> None:
        history = self.store.get_chat_history(sid)
        for n in turns:
            history += [
                {"role": "user", "content": f"{TEXT} #{n}"},
                {"role": "assistant", "content": f"{TEXT} reply {n}"},
            ]
        self.store.set_chat_history(sid, history)

    def load(self, sid: str) -> int:
        """The whole record: the active window (recent turns and a summary of older
        ones, what the Agent resumes with) and the archive of the turns it replaced."""
        from praisonaiagents.session.store import DefaultSessionStore

        session = DefaultSessionStore(session_dir=str(self.directory)).get_session(sid)
        summaries = sum(1 for m in session.messages if m.metadata.get("compaction"))
        return len(session.archived_messages) + len(session.messages) - summaries


class PraisonDBHooks:
    """A PraisonDB through the hooks the Agent calls."""

    def __init__(self, url: str) -> None:
        from praisondb import PraisonDB

        self.db = PraisonDB(url, auto_migrate=True)

    def turn(self, sid: str, n: int) -> None:
        self.db.on_user_message(sid, f"{TEXT} #{n}")
        self.db.on_agent_message(sid, f"{TEXT} reply {n}")

    def fill(self, sid: str, turns: range) -> None:
        from praisondb.model import Message

        self.db.sessions.get_or_create(sid)
        for start in range(turns.start, turns.stop, 500):
            batch = range(start, min(start + 500, turns.stop))
            self.db.messages.extend(
                sid,
                [
                    Message(sid, role, f"{TEXT} {'reply ' if role == 'assistant' else '#'}{n}")
                    for n in batch
                    for role in ("user", "assistant")
                ],
            )

    def load(self, sid: str) -> int:
        return len(self.db.on_agent_start("bench", sid))

    def close(self) -> None:
        self.db.close()


def measure_praisonai_store(store: Any, load: int) -> tuple[float, float, float]:
    sid = f"grow-{uuid.uuid4().hex[:8]}"
    store.turn(f"warm-{sid}", -1)  # schema creation, connection warm-up
    early = []
    for n in range(75):  # up to ~150 items; turns 25-75 are the ~100-item window
        t0 = time.perf_counter()
        store.turn(sid, n)
        early.append(time.perf_counter() - t0)
    store.fill(sid, range(75, 2500))  # ~5,000 items
    late = []
    for n in range(2500, 2500 + WINDOW + 1):
        t0 = time.perf_counter()
        store.turn(sid, n)
        late.append(time.perf_counter() - t0)
    at_100 = statistics.median(early[25:75])
    growth = statistics.median(late[1:]) / at_100  # the first may pay a one-off compaction
    big = f"load-{uuid.uuid4().hex[:8]}"
    store.fill(big, range(load // 2))
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        got = store.load(big)
        samples.append(time.perf_counter() - t0)
        assert got == load, (got, load)
    return 1 / at_100, growth, statistics.median(samples) * 1000


def praisonai(backends: list[str], turns: int, load: int) -> Iterator[Row]:
    del turns  # fixed windows: ~100 and ~5,000 items
    with tempfile.TemporaryDirectory() as tmp:
        rate, growth, load_ms = measure_praisonai_store(StockStore(Path(tmp)), load)
        row = Row("praisonai", "JSON files", "DefaultSessionStore (stock)", rate, growth, load_ms)
        print_row(row)
        yield row
    # json: as durable as every praisondb write (fsync), and without fsync like the stock store
    runs = [("json", ""), ("json", "?fsync=false"), *((b, "") for b in backends if b != "json")]
    for backend, query in runs:
        with tempfile.TemporaryDirectory() as tmp, BACKENDS[backend].factory(Path(tmp)) as url:
            hooks = PraisonDBHooks(url + query)
            try:
                rate, growth, load_ms = measure_praisonai_store(hooks, load)
            finally:
                hooks.close()
            label = backend + (f" ({query[1:]})" if query else "")
            row = Row("praisonai", label, "praisondb PraisonDB hooks", rate, growth, load_ms)
            print_row(row)
            yield row


SECTIONS: dict[str, Callable[[list[str], int, int], Iterator[Row]]] = {
    "openai-agents": openai_agents,
    "adk": adk,
    "praisonai": praisonai,
}
HEADERS = {
    "openai-agents": (
        "| backend | store | turns/s (2 items each) | turn at ~5,000 vs ~100 items "
        "| load 10,000 items |"
    ),
    "adk": (
        "| backend | service | turns/s (2 append_event each) | turn at ~5,000 vs ~100 events "
        "| get_session of 10,000 events | list_sessions of 10,000 sessions |"
    ),
    "praisonai": (
        "| backend | store | turns/s at ~100 items (2 messages each) "
        "| turn at ~5,000 vs ~100 items | load 10,000 items |"
    ),
}


def print_row(row: Row) -> None:
    listed = f" {row.list_ms:,.1f} ms |" if row.list_ms is not None else ""
    print(
        f"| {row.backend} | {row.store} | {row.turns_per_s:,.0f} | {row.growth:.2f}x "
        f"| {row.load_ms:,.1f} ms |{listed}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--backends", default="sqlite,postgres,redis")
    parser.add_argument("--turns", type=int, default=2500)
    parser.add_argument("--load", type=int, default=10_000)
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    for section in args.sections.split(","):
        print(f"\n## {section}\n")
        print(HEADERS[section])
        print("|---" * HEADERS[section].count(" | ") + "|---|")
        for _ in SECTIONS[section](backends, args.turns, args.load):
            pass


if __name__ == "__main__":
    main()
