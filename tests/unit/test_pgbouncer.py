"""PostgreSQL behind a real PgBouncer in transaction pooling mode (``tools/services.sh up``).

PgBouncer 1.18 (Debian 12) hands every transaction to any server connection and knows
nothing of prepared statements, so psycopg's automatic server-side prepares (after five
runs of one statement on a connection) break there, and ``prepare_threshold=none`` fixes
it. Each test makes its own database directly on PostgreSQL, creates the schema over
that direct connection (as a deployment would: migrations on a direct connection), then
uses it through PgBouncer, which passes every database name through (``* = ...``).

The workloads run on both faces: the async face talks through psycopg's AsyncConnection,
whose prepared statements behave (and break behind PgBouncer) as the sync one's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.util.concurrency import greenlet_spawn

from praisondb import ConfigError, Conflict, PraisonDB
from praisondb.aio import AsyncPraisonDB
from praisondb.stores.sql import engine as sql_engine
from praisondb.urls import parse_url
from tests.backends import postgres_backend
from tests.conftest import require_all_backends
from tests.faces import FACES, LoopThread, lens

BOUNCER_VARIABLE = "PRAISONDB_TEST_PGBOUNCER_URL"
THREADS = 6
STORE_POOL = THREADS  # client connections: more than PgBouncer's server connections
ROUNDS = 12
PREPARED_ERROR = re.compile(r'prepared statement "_pg3_\d+" (does not exist|already exists)')
PREPARED_STATES = frozenset({"26000", "42P05"})  # invalid statement name, duplicate


@dataclass(frozen=True)
class Bounced:
    direct: str
    """The database on PostgreSQL itself (schema changes go here)."""
    bouncer: str
    """The same database through PgBouncer."""
    name: str
    admin: str
    """PgBouncer's admin console."""


def _bouncer_base() -> str:
    url = os.environ.get(BOUNCER_VARIABLE)
    if url:
        return url
    message = f"{BOUNCER_VARIABLE} is not set; run tools/services.sh up pgbouncer and eval env"
    if require_all_backends():
        pytest.fail(message)
    pytest.skip(message)


def _plain(url: str) -> str:
    """A URL psycopg.connect understands (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Bounced]:
    """A new, empty database made directly on PostgreSQL, and its URL through PgBouncer."""
    base = make_url(_bouncer_base())
    with contextlib.ExitStack() as stack:
        try:
            direct = stack.enter_context(postgres_backend(tmp_path))
        except Exception as exc:
            message = f"postgres is unreachable: {type(exc).__name__}: {exc}"
            if require_all_backends():
                pytest.fail(message)
            pytest.skip(message)
        name = make_url(direct).database or ""
        bouncer = base.set(database=name).render_as_string(hide_password=False)
        admin = _plain(base.set(database="pgbouncer").render_as_string(hide_password=False))
        try:
            with psycopg.connect(_plain(bouncer), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            pytest.fail(
                f"PgBouncer at {base.render_as_string()} cannot reach the database just made "
                f"on {make_url(direct).render_as_string()} ({exc}); it must front that server"
            )
        yield Bounced(direct, bouncer, name, admin)


@pytest.fixture
def bounced(fresh: Bounced) -> Bounced:
    """``fresh`` with the schema, made over the direct connection."""
    with PraisonDB(fresh.direct, auto_migrate=True) as db:
        db.ping()
    return fresh


def _admin(url: str, command: str) -> list[dict[str, Any]]:
    """Rows of a PgBouncer admin console command (SHOW ...), as dicts."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(command)
        names = [column.name for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass
class Outcome:
    shared: str
    """The session every thread appends to."""
    errors: list[BaseException] = field(default_factory=list)
    appended: dict[int, list[str]] = field(default_factory=dict)
    """Per thread: the ids of the messages it appended to the shared session, in order."""
    own: dict[int, list[str]] = field(default_factory=dict)
    """Per thread: the sessions it made."""


def _workload(db: PraisonDB, user: str) -> Outcome:
    """Six threads at once, each: chat traffic on one shared session (appends and reads,
    the hot path, over and over), then sessions of its own with messages, state (set,
    get, compare-and-set won and lost, incr) and a checkpoint. First error per thread kept.

    The chat phase comes first and has no errors in it: psycopg forgets how often it ran
    a statement on every ROLLBACK (a lost compare-and-set is one), so it is steady
    traffic like this that gets statements prepared.
    """
    outcome = Outcome(db.sessions.create(user_id=user, title="shared").id)
    shared = outcome.shared
    start = threading.Barrier(THREADS)

    def chat(number: int) -> None:
        ids = outcome.appended.setdefault(number, [])
        for round_ in range(ROUNDS):
            ids.append(db.messages.append(shared, "user", f"t{number} r{round_}").id)
            pair = db.messages.extend(
                shared,
                [
                    {"role": "assistant", "content": f"t{number} r{round_} a"},
                    {"role": "tool", "content": [{"type": "text", "n": number, "r": round_}]},
                ],
            )
            ids.extend(m.id for m in pair)
            assert len(db.messages.list(shared, last=3)) == 3

    def sessions(number: int) -> None:
        own = outcome.own.setdefault(number, [])
        for round_ in range(ROUNDS):
            session = db.sessions.create(user_id=user, agent=f"a{number}").id
            own.append(session)
            scope = f"session:{session}"
            db.messages.extend(
                session, [{"role": "user", "content": f"{session} {i}"} for i in range(3)]
            )
            db.state.set("step", round_, scope=scope)
            entry = db.state.get_entry("step", scope=scope)
            assert entry is not None and entry.value == round_
            db.state.compare_and_set("step", round_ + 1, entry.version, scope=scope)
            with pytest.raises(Conflict):
                db.state.compare_and_set("step", -1, entry.version, scope=scope)
            db.state.incr("total", scope=f"user:{user}")
            db.checkpoints.create(session, label=f"r{round_}")
            assert db.sessions.get(session).message_count == 3

    def worker(number: int) -> None:
        start.wait()
        try:
            chat(number)
            sessions(number)
        except BaseException as exc:  # reported by the test
            outcome.errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "workload hung"
    return outcome


def _check_round_trip(db: PraisonDB, user: str, outcome: Outcome) -> None:
    stored = db.messages.list(outcome.shared)
    total = THREADS * ROUNDS * 3
    assert [m.seq for m in stored] == list(range(1, total + 1))  # gap-free, no duplicates
    seq_of = {m.id: m.seq for m in stored}
    assert sorted(seq_of) == sorted(i for ids in outcome.appended.values() for i in ids)
    for ids in outcome.appended.values():
        seqs = [seq_of[i] for i in ids]
        assert seqs == sorted(seqs)  # each thread's appends in its order
        # extend() is one statement: its two messages are adjacent
        assert all(seqs[k + 2] == seqs[k + 1] + 1 for k in range(0, len(seqs), 3))
    assert db.sessions.get(outcome.shared).message_count == total
    own = [s for made in outcome.own.values() for s in made]
    assert len(own) == len(set(own)) == THREADS * ROUNDS
    listed = [s.id for s in db.sessions.iterate(page_size=7, user_id=user)]
    assert sorted(listed) == sorted([*own, outcome.shared])
    for session in own:
        assert [(m.seq, m.content) for m in db.messages.list(session)] == [
            (i + 1, f"{session} {i}") for i in range(3)
        ]
        (checkpoint,) = db.checkpoints.list(session)
        assert checkpoint.seq == 3 and checkpoint.state["step"] >= 1
    assert db.state.get("total", scope=f"user:{user}") == THREADS * ROUNDS


Opener = Callable[..., PraisonDB]


@pytest.fixture(params=FACES)
def opener(request: pytest.FixtureRequest, face_loop: LoopThread) -> Opener:
    """Opens the store on this test's face; the async one through the sync lens, so the
    workload's threads become concurrent tasks on one loop."""

    def open_(url: str, **options: Any) -> PraisonDB:
        options = {"pool_size": STORE_POOL, "max_overflow": 0, "pool_timeout": 30, **options}
        if request.param == "sync":
            return PraisonDB(url, **options)
        opened: PraisonDB = lens(AsyncPraisonDB(url, **options), face_loop)
        return opened

    return open_


def _open(url: str, **options: Any) -> PraisonDB:
    return PraisonDB(url, pool_size=STORE_POOL, max_overflow=0, pool_timeout=30, **options)


def test_transaction_pooling_setup(bounced: Bounced) -> None:
    """The PgBouncer really pools per transaction with fewer server connections than the
    store has clients, or the tests below would prove nothing."""
    with _open(bounced.bouncer, prepare_threshold=None) as db:
        db.ping()
        (config,) = [r for r in _admin(bounced.admin, "SHOW CONFIG") if r["key"] == "pool_mode"]
        assert config["value"] == "transaction"
        (database,) = [
            r for r in _admin(bounced.admin, "SHOW DATABASES") if r["name"] == bounced.name
        ]
        assert database["pool_mode"] in {None, "transaction"}
        assert database["pool_size"] < STORE_POOL


def test_store_behind_pgbouncer_without_prepared_statements(
    bounced: Bounced, opener: Opener
) -> None:
    user = "u-" + bounced.name
    with opener(f"{bounced.bouncer}?prepare_threshold=none") as db:
        outcome = _workload(db, user)
        assert not outcome.errors, outcome.errors[:3]
        _check_round_trip(db, user, outcome)
        (pool,) = [r for r in _admin(bounced.admin, "SHOW POOLS") if r["database"] == bounced.name]
        (database,) = [
            r for r in _admin(bounced.admin, "SHOW DATABASES") if r["name"] == bounced.name
        ]
        servers = pool["sv_active"] + pool["sv_idle"] + pool["sv_used"] + pool["sv_tested"]
        clients = pool["cl_active"] + pool["cl_waiting"]
        # the store's client connections took turns on a few server connections
        assert 1 <= servers <= database["pool_size"] < clients == STORE_POOL
    with PraisonDB(bounced.direct) as direct:  # and PostgreSQL itself agrees
        assert direct.state.get("total", scope=f"user:{user}") == THREADS * ROUNDS


def test_default_prepared_statements_break_behind_pgbouncer(
    bounced: Bounced, opener: Opener
) -> None:
    """Without the option psycopg prepares statements, and PgBouncer moves the connection."""
    with opener(bounced.bouncer) as db:
        outcome = _workload(db, "u-" + bounced.name)
    # Usually every thread fails this way; other failures may follow from a statement run
    # under a name another client prepared on that server connection, so one is enough.
    prepared = [e for e in outcome.errors if _is_prepared_error(e)]
    assert prepared, f"expected prepared-statement errors, got {outcome.errors!r}"


def _is_prepared_error(error: BaseException) -> bool:
    """A ConfigError that names the fix, raised from the driver's prepared-statement error."""
    cause = error.__cause__
    return (
        isinstance(error, ConfigError)
        and "?prepare_threshold=none" in str(error)
        and isinstance(cause, sa.exc.ProgrammingError)
        and isinstance(cause.orig, psycopg.Error)
        and cause.orig.sqlstate in PREPARED_STATES
        and PREPARED_ERROR.search(str(cause.orig)) is not None
    )


def test_migrations_also_run_through_pgbouncer(fresh: Bounced, opener: Opener) -> None:
    """One transaction under a transaction-scoped advisory lock: no session state needed."""
    with opener(fresh.bouncer, auto_migrate=True, prepare_threshold="none") as db:
        assert db.ping()
        db.messages.append(db.sessions.create("s").id, "user", "hi")
    with PraisonDB(fresh.direct) as db:
        assert db.conversations.schema_version() is not None
        assert [m.content for m in db.messages.list("s")] == ["hi"]


# -- the option itself --------------------------------------------------------------------


def _settings(url: str, **options: Any) -> sql_engine.EngineSettings:
    return sql_engine.parse_options(parse_url(url), options)


PG = "postgresql://app:S3cretPw@127.0.0.1:1/app"


@pytest.mark.parametrize(
    ("query", "keywords", "expected"),
    [
        ("?prepare_threshold=none", {}, None),
        ("?prepare_threshold=None", {}, None),
        ("?prepare_threshold=0", {}, 0),
        ("?prepare_threshold=12", {}, 12),
        ("", {"prepare_threshold": None}, None),
        ("", {"prepare_threshold": 3}, 3),
        ("", {"prepare_threshold": "none"}, None),
        ("?prepare_threshold=3", {"prepare_threshold": None}, None),  # keywords win
    ],
)
def test_prepare_threshold_values(
    query: str, keywords: dict[str, Any], expected: int | None
) -> None:
    settings = _settings(PG + query, **keywords)
    assert settings.driver_args == {"prepare_threshold": expected}
    assert "prepare_threshold" not in sql_engine.driver_url(parse_url(PG + query)).query


def test_prepare_threshold_unset_keeps_psycopg_default() -> None:
    assert _settings(PG).driver_args == {}


@pytest.mark.parametrize("value", ["abc", "-1", "", "1.5", "５", -1, 1.5, True, [1]])
def test_prepare_threshold_bad_values(value: Any) -> None:
    with pytest.raises(ConfigError, match="prepare_threshold must be a whole number") as caught:
        _settings(PG, prepare_threshold=value)
    assert "S3cretPw" not in str(caught.value) and "127.0.0.1:1/app" in str(caught.value)
    if isinstance(value, str):
        with pytest.raises(ConfigError, match="prepare_threshold must be a whole number"):
            _settings(f"{PG}?prepare_threshold={value}")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}/x.db?prepare_threshold=none",
        "mysql://root:S3cretPw@127.0.0.1:1/x?prepare_threshold=0",
    ],
)
def test_prepare_threshold_is_postgres_only(url: str, tmp_path: Path) -> None:
    url = url.format(tmp=tmp_path)
    with pytest.raises(ConfigError, match="prepare_threshold is for PostgreSQL") as caught:
        PraisonDB(url).ping()
    assert "S3cretPw" not in str(caught.value)
    with pytest.raises(ConfigError, match="prepare_threshold is for PostgreSQL"):
        _settings(url.split("?")[0], prepare_threshold=None)
    assert not (tmp_path / "x.db").exists()  # refused before connecting


@pytest.mark.parametrize("io", ["sync", "async"])
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?prepare_threshold=none", None),
        ("?prepare_threshold=2", 2),
        ("", 5),  # psycopg's own default, kept: prepared statements pay off on a direct link
    ],
)
def test_prepare_threshold_reaches_psycopg(
    fresh: Bounced, query: str, expected: int | None, io: str
) -> None:
    parsed = parse_url(fresh.direct + query)
    engine = sql_engine.create_engine(parsed, sql_engine.parse_options(parsed, {}), io=io)
    driver = psycopg.AsyncConnection if io == "async" else psycopg.Connection

    def check() -> None:
        try:
            raw = engine.raw_connection()
            try:
                assert isinstance(raw.driver_connection, driver)
                assert raw.driver_connection.prepare_threshold == expected
            finally:
                raw.close()
        finally:
            engine.dispose()

    if io == "sync":
        check()
    else:  # the async engine does its I/O from a greenlet, as under AsyncPraisonDB
        asyncio.run(greenlet_spawn(check))
