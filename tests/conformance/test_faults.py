"""Writes through a faulty network: nothing acknowledged is lost, nothing is stored twice.

Each test drives a store through a :class:`~tests.faults.proxy.FaultProxy` that drops the
reply of a committed write, resets connections, delays traffic or black-holes the
server, then heals it and checks the data through a direct connection. Every error the
public API raises must be a ``PraisonDBError`` whose ``transient`` flag is right
(``BackendUnavailable`` and nothing else is transient); anything else escapes and fails.
Every fault is tallied (tests/faults/record.py) and printed at the end of the run.

On Redis Cluster every node gets its own proxy, and the store's ``address_remap`` points
the addresses the nodes announce at them (tests/faults/targets.py: FaultCluster).

Every test runs on both faces (``via`` is the store through the proxy on the test's face).
Sync-only: the copy test's SQLite source is written and read with the sync PraisonDB,
because ``transfer.copy`` has no async face and the source is not the store under test.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest

from praisondb import BackendUnavailable, Message, PraisonDB, PraisonDBError, transfer
from praisondb.core.lock_names import LOCK_SCOPE, session_lock_name
from praisondb.ids import new_id
from tests.backends import TestBackend
from tests.faults.proxy import Match
from tests.faults.record import record
from tests.faults.targets import (
    BLACKHOLE,
    MARKS,
    SERVER_BACKENDS,
    Faults,
    faulty,
    proxied,
    store_options,
)

pytestmark = pytest.mark.backends(*SERVER_BACKENDS)
DELETE_MARKS: dict[str, tuple[Match, ...]] = {
    "mongodb": (b"delete\x00",),
    "http": (b"DELETE /state/",),
}
"""Requests that commit a state delete where they differ from MARKS' state writes."""
INCR_MARKS: dict[str, tuple[Match, ...]] = {
    "mongodb": (b"findAndModify\x00",),
    "postgres": (b"COMMIT",),
    "http": (b"/incr HTTP/1.1",),
}
"""An incr of an existing integer is one findAndModify on MongoDB; on PostgreSQL its
UPDATE runs inside a transaction, so the write commits with the COMMIT."""
T = TypeVar("T")
Fault = tuple[str, "Match | None"]


@pytest.fixture
def proxy(backend: TestBackend, backend_url: str) -> Iterator[Faults]:
    with faulty(backend.name, backend_url) as armed:
        yield armed


@pytest.fixture
def via(
    db: PraisonDB,
    backend: TestBackend,
    backend_url: str,
    proxy: Faults,
    open_db: Callable[..., PraisonDB],
) -> Iterator[PraisonDB]:
    """The store opened through the proxy, on the test's face (``db`` has migrated it
    already)."""
    url = proxied(backend.name, backend_url, proxy)
    with open_db(url, **store_options(proxy)) as through:
        through.ping()
        yield through


def attempt(fn: Callable[[], T]) -> tuple[T | None, PraisonDBError | None]:
    """Run ``fn``; a PraisonDBError is returned (with its transient flag checked), anything
    else escapes and fails the test."""
    try:
        return fn(), None
    except PraisonDBError as exc:
        error = exc
    assert error.transient is isinstance(error, BackendUnavailable), (
        f"{type(error).__name__} has transient={error.transient}: {error}"
    )
    return None, error


def arm(proxy: Faults, fault: str, mark: Match | None) -> None:
    if fault == "drop_reply":
        proxy.drop_reply(mark)
    elif fault == "drop_every_reply":
        proxy.drop_reply(mark, times=3)  # more than the store's own attempts
    elif fault == "reset":
        proxy.reset(mark)  # with a mark: the request never reaches the server
    elif fault == "reset_all":
        proxy.reset()  # the pooled connections die now
    elif fault == "delay":
        proxy.delay(0.1)
    else:
        assert fault == "blackhole"
        proxy.blackhole()


def write_faults(backend: str, marks: tuple[Match, ...]) -> list[Fault]:
    faults: list[Fault] = [("drop_reply", m) for m in marks] + [("drop_every_reply", marks[0])]
    faults += [("reset", m) for m in marks] + [("reset_all", None), ("delay", None)]
    if backend in BLACKHOLE:
        faults.append(("blackhole", None))
    return faults


def settle(proxy: Faults, fault: str, before: Counter[str]) -> None:
    """Heal, after checking that the fault armed really fired."""
    fired = proxy.injected - before
    proxy.heal()
    name = {"reset_all": "reset", "drop_every_reply": "drop_reply"}.get(fault, fault)
    assert fired[name] >= 1, f"{fault} never fired; the test proved nothing"


def outcome(error: PraisonDBError | None) -> str:
    return "ok" if error is None else type(error).__name__


@pytest.mark.parametrize("size", [1, 5], ids=["append", "extend"])
def test_message_writes_survive_faults(
    db: PraisonDB, via: PraisonDB, proxy: Faults, backend: TestBackend, uid: str, size: int
) -> None:
    """One fault per write. Within the retry budget a dropped reply, a reset or a delay
    must be invisible: the write returns and is stored once. A black hole, or replies lost
    on every attempt, may outlast the retries: BackendUnavailable, the write stored at most
    once, whole or not at all; the caller's retry with the same message ids after healing
    then returns it, stored exactly once."""
    db.sessions.create(uid)
    acked: dict[str, int] = {}
    batches: list[list[str]] = []
    for i, (fault, mark) in enumerate(write_faults(backend.name, MARKS[backend.name].append)):
        contents = [f"{i}-{fault}-{j}" for j in range(size)]
        batches.append(contents)
        write = partial(_write, via, uid, contents)
        before = Counter(proxy.injected)
        arm(proxy, fault, mark)
        stored, error = attempt(write)
        settle(proxy, fault, before)
        label = outcome(error)
        if fault == "blackhole":
            assert isinstance(error, BackendUnavailable), f"black hole: {error!r}"
        if error is not None and fault in ("blackhole", "drop_every_reply"):
            assert isinstance(error, BackendUnavailable), f"{fault}: {error!r}"
            stored, error = attempt(write)  # the caller retries: same ids, same content
            label += ", caller's retry ok" if error is None else f", caller's retry {error!r}"
        record(backend.name, fault, label, checked=len(stored or []))
        assert error is None, f"{fault} on {mark!r}: {type(error).__name__}: {error}"
        for message in stored or []:
            acked[str(message.content)] = message.seq
    check_messages(db, uid, acked, batches)


def _write(db: PraisonDB, session_id: str, contents: list[str]) -> list[Message]:
    """``append`` for one message, else ``extend``; ids derive from the content, so a
    re-sent write is recognisably the same one."""
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"{session_id}/{c}").hex for c in contents]
    if len(contents) == 1:
        return [db.messages.append(session_id, "user", contents[0], id=ids[0])]
    batch = [{"id": m, "role": "user", "content": c} for m, c in zip(ids, contents, strict=True)]
    return db.messages.extend(session_id, batch)


def check_messages(
    db: PraisonDB, session_id: str, acked: dict[str, int], batches: list[list[str]]
) -> None:
    messages = db.messages.list(session_id)
    seqs = [m.seq for m in messages]
    assert seqs == list(range(1, len(messages) + 1)), f"seq has gaps: {seqs}"
    by_content = Counter(str(m.content) for m in messages)
    twice = [c for c, n in by_content.items() if n > 1]
    assert not twice, f"stored twice: {twice}"
    where = {str(m.content): m.seq for m in messages}
    for content, seq in acked.items():
        assert where.get(content) == seq, f"acknowledged {content!r} (seq {seq}) is missing"
    for batch in batches:  # all or nothing, in order
        present = [c for c in batch if c in where]
        assert present in ([], batch), f"a batch was half stored: {present} of {batch}"
        if present:
            assert [where[c] for c in batch] == list(
                range(where[batch[0]], where[batch[0]] + len(batch))
            )
    info = db.sessions.get(session_id)
    assert (info.message_count, info.last_seq) == (len(messages), len(messages))


def test_state_compare_and_set_survives_faults(
    db: PraisonDB, via: PraisonDB, proxy: Faults, backend: TestBackend, uid: str
) -> None:
    """A compare-and-set whose reply is lost, reset or delayed returns its entry: it
    landed once, at the next version, and is never reported as a Conflict (the store's
    re-send finds its own write token). Replies lost on every attempt, or a black hole,
    may end in BackendUnavailable; the caller's re-send with the same write token after
    healing then returns the entry, still applied once."""
    key = f"cas-{uid}"
    for i, (fault, mark) in enumerate(write_faults(backend.name, MARKS[backend.name].state)):
        entry = db.state.get_entry(key)
        version = entry.version if entry else 0
        value = {"i": i, "fault": fault}
        outlasts_retries = fault in ("blackhole", "drop_every_reply")
        token = new_id() if outlasts_retries else None  # else praisondb's own token
        write = partial(via.state.set, key, value, expected_version=version, write_token=token)
        before = Counter(proxy.injected)
        arm(proxy, fault, mark)
        written, error = attempt(write)
        settle(proxy, fault, before)
        label = outcome(error)
        if error is not None and outlasts_retries:
            assert isinstance(error, BackendUnavailable), f"{fault}: {error!r}"
            written, error = attempt(write)  # the caller re-sends: same token
            label += ", caller's retry ok" if error is None else f", caller's retry {error!r}"
        record(backend.name, f"cas {fault}", label, checked=1)
        assert error is None, f"{fault} on {mark!r}: {type(error).__name__}: {error}"
        after = db.state.get_entry(key)
        assert after is not None and (after.version, after.value) == (version + 1, value), (
            f"{fault}: state became {after!r} from version {version}"
        )
        assert written is not None and (written.version, written.value) == (version + 1, value)


def test_state_conditional_delete_survives_faults(
    db: PraisonDB, via: PraisonDB, proxy: Faults, backend: TestBackend, uid: str
) -> None:
    """A conditional delete whose reply is lost, reset or delayed returns True and the
    entry is gone: the store's re-send that finds no live entry reports it deleted
    (see StateStore.delete_entry). Faults that outlast the retries may end in
    BackendUnavailable, with the entry either gone or untouched."""
    marks = DELETE_MARKS.get(backend.name, MARKS[backend.name].state)
    for i, (fault, mark) in enumerate(write_faults(backend.name, marks)):
        key = f"del-{uid}-{i}"
        db.state.set(key, "a")
        entry = db.state.set(key, "b")
        before = Counter(proxy.injected)
        arm(proxy, fault, mark)
        deleted, error = attempt(partial(via.state.delete, key, expected_version=entry.version))
        settle(proxy, fault, before)
        after = db.state.get_entry(key)
        record(backend.name, f"cas delete {fault}", outcome(error), checked=1)
        if error is not None and fault in ("blackhole", "drop_every_reply"):
            assert isinstance(error, BackendUnavailable), f"{fault}: {error!r}"
            assert after is None or (after.version, after.value) == (entry.version, "b")
            continue
        assert error is None, f"{fault} on {mark!r}: {type(error).__name__}: {error}"
        assert deleted is True and after is None, f"{fault}: returned {deleted}, left {after!r}"


def test_state_incr_survives_faults(
    db: PraisonDB, via: PraisonDB, proxy: Faults, backend: TestBackend, uid: str
) -> None:
    """An incr whose reply is lost, reset or delayed is counted exactly once (its re-send
    finds its own write token); one that fails was counted at most once."""
    key = f"incr-{uid}"
    db.state.set(key, 0)
    marks = INCR_MARKS.get(backend.name, MARKS[backend.name].state)
    for fault, mark in write_faults(backend.name, marks):
        start = db.state.get(key)
        assert isinstance(start, int)
        before = Counter(proxy.injected)
        arm(proxy, fault, mark)
        total, error = attempt(partial(via.state.incr, key, 5))
        settle(proxy, fault, before)
        now = db.state.get(key)
        record(backend.name, f"incr {fault}", outcome(error), checked=1)
        if error is not None and fault in ("blackhole", "drop_every_reply"):
            assert isinstance(error, BackendUnavailable), f"{fault}: {error!r}"
            assert now in (start, start + 5), f"{fault}: {start} became {now}"
            continue
        assert error is None, f"{fault} on {mark!r}: {type(error).__name__}: {error}"
        assert total == now == start + 5, f"{fault}: {start} + 5 returned {total}, stored {now}"


def test_session_lock_survives_faults(
    db: PraisonDB, via: PraisonDB, proxy: Faults, backend: TestBackend, uid: str
) -> None:
    """Acquire and release a session lock while a state write's reply is lost or its
    connection reset: the lease is either held (and released) or not taken at all; a
    lease written to the store but not known to its holder would lock everyone out."""
    name = session_lock_name(uid)
    faults: list[Fault] = [
        (kind, m) for kind in ("drop_reply", "reset") for m in MARKS[backend.name].state
    ]
    faults.append(("delay", None))
    for phase in ("acquire", "release"):
        for fault, mark in faults:
            lease = via.session(uid).lock(timeout=2, ttl=30)
            before = Counter(proxy.injected)
            if phase == "release":
                assert lease.acquire().token is not None
            arm(proxy, fault, mark)
            if phase == "acquire":
                _held, error = attempt(lease.acquire)
            else:
                _released, error = attempt(lease.release)
            settle(proxy, fault, before)
            entry = db.state.get_entry(name, scope=LOCK_SCOPE)
            owner = entry.value.get("owner") if entry and isinstance(entry.value, dict) else None
            if phase == "acquire" and error is None:
                assert owner == lease.owner, f"{fault}: acquired, but the store names {owner!r}"
                lease.release()
            else:
                assert owner != lease.owner, (
                    f"{fault} during {phase}: {type(error).__name__ if error else 'ok'}, yet the "
                    "store still names this lease as holder (a ghost lease until its ttl)"
                )
            assert error is None, f"{fault} during {phase}: {type(error).__name__}: {error}"
            record(backend.name, f"lock {phase} {fault}", outcome(error), checked=1)


def make_source(path: Path, prefix: str, sessions: int = 3, messages: int = 20) -> str:
    url = f"sqlite:///{path}"
    with PraisonDB(url, auto_migrate=True) as source:
        for s in range(sessions):
            sid = f"{prefix}-{s}"
            source.sessions.create(sid, user_id="copier")
            source.messages.extend(
                sid, [{"role": "user", "content": f"{sid}:{i}"} for i in range(messages)]
            )
    return url


@pytest.mark.parametrize("fault", ["drop_reply", "reset"])
def test_copy_through_faults_is_whole_after_a_rerun(
    db: PraisonDB,
    backend: TestBackend,
    backend_url: str,
    proxy: Faults,
    uid: str,
    tmp_path: Path,
    fault: str,
) -> None:
    """A copy hit by a fault part-way either finishes or fails with a PraisonDBError; a
    re-run (resumable, idempotent) then leaves the target equal to the source."""
    faulty_url = proxied(backend.name, backend_url, proxy)
    options = store_options(proxy)
    for k, after in enumerate((3, 12)):
        prefix = f"{uid}-{k}"
        source = make_source(tmp_path / f"source{k}.db", prefix)
        before = Counter(proxy.injected)
        if fault == "drop_reply":
            proxy.drop_reply(after=after)
        else:
            proxy.reset(b"", after=after)
        sessions = [f"{prefix}-{s}" for s in range(3)]
        _report, error = attempt(
            partial(transfer.copy, source, faulty_url, sessions=sessions, target_options=options)
        )
        settle(proxy, fault, before)
        again = transfer.copy(source, faulty_url, sessions=sessions, target_options=options)
        assert again.verify is not None and again.verify.ok, again.verify
        with PraisonDB(source) as src:
            for s in range(3):
                sid = f"{prefix}-{s}"
                want = [(m.seq, m.id, m.content) for m in src.messages.list(sid)]
                got = [(m.seq, m.id, m.content) for m in db.messages.list(sid)]
                assert got == want, f"{fault} after {after} requests: {sid} differs"
        record(backend.name, f"copy {fault}", f"{outcome(error)}, re-run whole", checked=60)
