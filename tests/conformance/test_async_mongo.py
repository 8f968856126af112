"""The MongoDB store on the async face (pymongo's AsyncMongoClient, driven in greenlets):
what the generic async tests (test_async_face.py) do not see of its mechanics.

- An append is one transaction of three requests: findAndModify (the seq counter),
  insert, commitTransaction. A task cancelled while any of them is in flight leaves the
  whole batch or nothing, and its transaction is ended by the cancelled task itself, not
  left to the server's reaper: a transaction probing the session document right after
  meets no write conflict, and the next append takes the next seq. Cancelled before
  the commit, the transaction is aborted (nothing); during it, the commit is sent again
  (whole; pymongo cannot abort after a commit, see praisondb/stores/mongo/core.py).
- First-use setup (collections, index migrations) holds a lock across its I/O. Many tasks
  of one loop making their first call at once must wait for it without blocking the loop
  (a ``threading.Lock`` there deadlocks the loop's one thread).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from praisondb.aio import AsyncPraisonDB
from praisondb.stores.mongo.core import MIGRATIONS
from tests.backends import mongodb_backend
from tests.conftest import require_module
from tests.faults.proxy import FaultProxy, Match, _hit, _Link
from tests.faults.targets import target

pymongo = require_module("pymongo")

pytestmark = pytest.mark.backends("mongodb")

BATCH = 5
STEPS: dict[str, Match] = {
    "findAndModify": b"findAndModify\x00",
    "insert": b"insert\x00",
    "commitTransaction": b"commitTransaction\x00",
}
"""The requests of one append, as the bytes that start their command documents."""


class HoldingProxy(FaultProxy):
    """A :class:`FaultProxy` that can also hold traffic, for a test to cancel a task
    while a given request is in flight.

    ``hold("request", mark)``: the next request carrying ``mark`` waits in the proxy;
    once released its connection is reset, so it never reaches the server. ``hold("reply", mark)``: that
    request reaches the server, and every reply waits until released. :attr:`held` is
    set once something waits."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.held = threading.Event()
        self._released = threading.Event()
        self._mark: Match | None = None
        self._what = ""
        self._replies = False

    def hold(self, what: str, mark: Match) -> None:
        self.held.clear()
        self._released.clear()
        self._what, self._mark = what, mark

    def release(self) -> None:
        self._mark, self._replies = None, False
        self._released.set()

    def _on_request(self, link: _Link, data: bytes) -> str:
        mark = self._mark
        if mark is not None and _hit(mark, b"", data):
            self._mark = None
            if self._what == "request":
                self.held.set()
                self._released.wait(30)
                self._count("hold request")
                return "reset"
            self._replies = True
            self._count("hold reply")
        return super()._on_request(link, data)

    def _on_reply(self) -> bool:
        if self._replies:
            self.held.set()
            self._released.wait(30)
        return super()._on_reply()


@pytest.fixture
def proxy(backend_url: str) -> Iterator[HoldingProxy]:
    with HoldingProxy(*target(backend_url)) as holding:
        yield holding


def through(url: str, proxy: FaultProxy) -> str:
    """``url`` via ``proxy`` (directConnection: else the client finds the server's own
    address in the replica-set config and bypasses the proxy)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, "directConnection=true") if q)
    return urlunsplit((parts.scheme, proxy.address, parts.path, query, ""))


def probe(url: str, session_id: str) -> str | None:
    """A transaction of another client writing the session document: the server's
    WriteConflict text while some transaction still holds that document, else None."""
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(url)
    try:
        sessions = client.get_default_database().sessions
        with client.start_session() as session, session.start_transaction():
            sessions.update_one({"_id": session_id}, {"$set": {"probe": 1}}, session=session)
            session.abort_transaction()  # a probe: it changes nothing
    except pymongo.errors.OperationFailure as exc:
        return str(exc)
    finally:
        client.close()
    return None


async def cancel_mid_append(
    url: str, direct: str, proxy: HoldingProxy, session_id: str, what: str, mark: Match
) -> tuple[str | None, list[str], tuple[int, int]]:
    """Append ``before``, cancel a batch append while ``mark`` is held, append ``after``:
    (the probe's conflict, the contents stored, (message_count, last_seq)).

    The cancellation lands as the request leaves (the proxy has it): either while the
    task waits for its reply, or, when it lands just as the socket write completes,
    inside pymongo's ``asyncio.wait_for``, which swallows it before Python 3.12 (see
    praisondb.aio.awaiting.wait). Releasing the proxy then ends the held request."""
    async with AsyncPraisonDB(url) as db:
        await db.sessions.create(session_id)
        await db.messages.append(session_id, "user", "before")
        proxy.hold(what, mark)
        batch = [{"role": "user", "content": f"batch-{i}"} for i in range(BATCH)]
        task = asyncio.ensure_future(db.messages.extend(session_id, batch))
        assert await asyncio.to_thread(proxy.held.wait, 30), f"{mark!r} never came"
        task.cancel()
        proxy.release()
        with pytest.raises(asyncio.CancelledError):
            await task
        # before the client closes: closing ends its server sessions, which would abort
        # a transaction the cancelled task left open and hide it
        conflict = await asyncio.to_thread(probe, direct, session_id)
        await db.messages.append(session_id, "user", "after")
        stored = [str(m.content) for m in await db.messages.list(session_id)]
        info = await db.sessions.get(session_id)
        return conflict, stored, (info.message_count, info.last_seq)


@pytest.mark.parametrize("step", ["findAndModify", "insert"])
def test_cancelled_before_its_commit_an_append_stores_nothing_and_aborts(
    backend_url: str, proxy: HoldingProxy, uid: str, step: str
) -> None:
    """The held request never reaches the server; what the transaction did before it is
    rolled back by the cancelled task's abort."""
    url = through(backend_url, proxy)
    conflict, stored, counters = asyncio.run(
        cancel_mid_append(url, backend_url, proxy, uid, "request", STEPS[step])
    )
    assert proxy.injected["hold request"] == 1
    assert conflict is None, f"cancelled at {step}, the transaction was left open: {conflict}"
    assert stored == ["before", "after"], f"cancelled at {step}: {stored}"
    assert counters == (2, 2), "the cancelled batch used up seqs or counts"


@pytest.mark.parametrize("what", ["request", "reply"])
def test_cancelled_during_its_commit_an_append_is_stored_whole_and_ends(
    backend_url: str, proxy: HoldingProxy, uid: str, what: str
) -> None:
    """The commit request held (it never arrives) or its reply held (it did): either way
    the batch ends up whole and no transaction stays open holding the session."""
    url = through(backend_url, proxy)
    conflict, stored, counters = asyncio.run(
        cancel_mid_append(url, backend_url, proxy, uid, what, STEPS["commitTransaction"])
    )
    assert proxy.injected[f"hold {what}"] == 1
    assert conflict is None, f"a transaction was left open: {conflict}"
    assert stored == ["before", *(f"batch-{i}" for i in range(BATCH)), "after"]
    assert counters == (BATCH + 2, BATCH + 2)


async def first_calls(url: str, tasks: int) -> list[int]:
    async with AsyncPraisonDB(url) as db:
        return list(await asyncio.gather(*(db.sessions.count() for _ in range(tasks))))


@pytest.mark.usefixtures("backend")
def test_first_calls_of_many_tasks_on_a_new_database_wait_for_setup_without_blocking(
    tmp_path: Path,
) -> None:
    """50 tasks whose first call each finds the setup (collections, indexes) not yet done
    on a database nobody has opened; the loop runs in a thread so that a deadlocked loop
    fails this test instead of hanging the run."""
    with mongodb_backend(tmp_path) as fresh:
        counts: list[int] = []
        loop = threading.Thread(
            target=lambda: counts.extend(asyncio.run(first_calls(fresh, 50))), daemon=True
        )
        loop.start()
        loop.join(timeout=30)
        assert not loop.is_alive(), "the loop hung: a task blocked it waiting for setup"
        assert counts == [0] * 50
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(fresh)
        try:
            applied = client.get_default_database().praisondb_migrations.find()
            assert [d["_id"] for d in applied] == [n for n, _, _ in MIGRATIONS]
        finally:
            client.close()


async def read_back(url: str, sizes: list[int]) -> list[tuple[list[str], list[str]]]:
    """(written contents, read contents) of one session per size, read whole and the
    newest half with ``last=``."""
    out = []
    async with AsyncPraisonDB(url) as db:
        for size in sizes:
            sid = f"batches-{size}"
            await db.sessions.create(sid)
            wrote = [f"m{i}" for i in range(size)]
            for start in range(0, size, 1000):
                chunk = wrote[start : start + 1000]
                await db.messages.extend(sid, [{"role": "user", "content": c} for c in chunk])
            whole = [str(m.content) for m in await db.messages.list(sid)]
            half = [str(m.content) for m in await db.messages.list(sid, last=size // 2)]
            out.append((wrote, whole))
            out.append((wrote[size - size // 2 :], half))
    return out


def test_a_cursor_read_in_batches_returns_every_document_in_order(backend_url: str) -> None:
    """Cursors hand over BATCH documents per await (praisondb.aio.awaiting): sizes on,
    under and across the batch edge all come back whole, in seq order."""
    from praisondb.aio.awaiting import BATCH as CURSOR_BATCH

    sizes = [0, 1, CURSOR_BATCH - 1, CURSOR_BATCH, 2 * CURSOR_BATCH + 345]
    for wrote, read in asyncio.run(read_back(backend_url, sizes)):
        assert read == wrote
