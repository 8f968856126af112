"""Whole sessions in a few requests: ``POST /bulk/sessions`` and copy's use of it.

Copies into a real ``praisondb serve`` (a lost reply, a server killed mid-copy), the route
in-process for tenancy, size limits and hostile input (praisondb/server/bulk.py)."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from praisondb import BackendUnavailable, ConflictAbort, PraisonDB, ValidationError, transfer
from praisondb.codec import to_record
from praisondb.model import Checkpoint, Message, Run, SessionInfo, Span, utcnow
from praisondb.stores.base import WholeSession
from praisondb.stores.http.bulk import bodies
from praisondb.stores.http.store import HttpStore
from praisondb.stores.http.transport import Reply
from praisondb.transfer import OnConflict, Progress
from praisondb.urls import parse_url
from tests.faults.proxy import FaultProxy
from tests.server.serving import Server, serve
from tests.server.test_api import Client
from tests.server.test_tenancy import Tenants

BULK = "/bulk/sessions"


def build_source(path: Path, sessions: int, messages: int = 3) -> str:
    """Sessions with messages, a run, a checkpoint, a span and (for s0) a branch."""
    url = f"sqlite:///{path}"
    with PraisonDB(url, auto_migrate=True) as db:
        for n in range(sessions):
            sid = f"s{n}/ü"  # a slash and a non-ASCII letter travel in the ids
            session = db.session(sid, user_id="u1")
            run = db.runs.start(sid, model="m")
            for k in range(messages):
                session.add_user(f"hello {n}.{k} 🚀", metadata={"k": k})
            db.runs.end(run.id, input_tokens=3)
            db.checkpoints.create(sid, label="cp")
            db.conversations.save_span(Span(trace_id=f"t{n}", name="turn", session_id=sid))
        db.session("s0/ü").fork(session_id="s0-branch")
    return url


class Counting:
    """Counts the requests an HttpStore sends, by method and path shape."""

    def __init__(self, store: HttpStore) -> None:
        self.seen: Counter[str] = Counter()
        send = store._http.request

        def request(method: str, path: str, **kwargs: Any) -> Reply:
            self.seen[f"{method} {'/bulk' if path == BULK else path.split('/')[1]}"] += 1
            return send(method, path, **kwargs)

        store._http.request = request  # type: ignore[method-assign]


def http_store(url: str) -> HttpStore:
    return HttpStore(parse_url(url))


def totals(url: str) -> tuple[int, int, int, int, int]:
    """Sessions, messages, runs, checkpoints and spans of a store."""
    with PraisonDB(url) as db:
        store = db.conversations
        infos = store.list_sessions(_all()).items
        return (
            len(infos),
            sum(store.count_messages(i.id) for i in infos),
            sum(len(store.list_runs(i.id)) for i in infos),
            sum(len(store.list_checkpoints(i.id)) for i in infos),
            len(store.list_spans()),
        )


def _all() -> Any:
    from praisondb.stores.base import SessionQuery

    return SessionQuery(limit=10_000)


# -- copy into and out of a server ------------------------------------------------------------
def test_copy_into_a_server_loads_whole_sessions_in_few_requests(
    server: Server, server_db_url: str, tmp_path: Path
) -> None:
    source = build_source(tmp_path / "src.db", 30)
    target = http_store(server.client_url)
    counting = Counting(target)
    report = transfer.copy(source, target, batch_size=40)
    target.close()
    assert report.verify is not None and report.verify.ok, report.verify
    assert report.sessions_created == 31 and report.messages_copied == 31 * 3
    assert (report.runs_copied, report.checkpoints_copied, report.spans_copied) == (30, 30, 30)
    # 31 sessions of ~3 messages in batches of 40 messages: a handful of bulk requests,
    # no per-session writes of sessions, messages, runs, checkpoints or spans
    assert 1 <= counting.seen["POST /bulk"] <= 4, counting.seen
    for route in ("PUT sessions", "PUT runs", "PUT checkpoints", "PUT spans"):
        assert counting.seen[route] == 0, counting.seen
    assert totals(server_db_url) == totals(source)
    back = f"sqlite:///{tmp_path / 'back.db'}"
    assert transfer.copy(server.client_url, back).verify.ok  # type: ignore[union-attr]
    assert totals(back) == totals(source)


def test_a_lost_reply_is_resent_and_nothing_is_stored_twice(
    server: Server, server_db_url: str, tmp_path: Path
) -> None:
    source = build_source(tmp_path / "src.db", 12)
    with FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.drop_reply(b"POST /bulk/sessions", after=1)  # the second batch lands unheard
        url = f"praisondb+http://{proxy.address}"
        report = transfer.copy(source, url, batch_size=10)
        assert proxy.injected["drop_reply"] == 1
    assert report.verify is not None and report.verify.ok, report.verify
    # the re-sent batch found its sessions present: compared, unchanged, nothing doubled
    assert report.sessions_created + report.sessions_unchanged == 13, report
    assert report.sessions_unchanged >= 1
    assert totals(server_db_url) == totals(source)
    again = transfer.copy(source, server.client_url, full=True)
    assert again.messages_copied == 0 and again.sessions_unchanged == 13


def test_a_server_killed_mid_copy_then_a_resumed_copy_verifies(
    server: Server, server_db_url: str, tmp_path: Path
) -> None:
    source = build_source(tmp_path / "src.db", 40)
    killed = threading.Event()

    def kill_after_first_batches(progress: Progress) -> None:
        if progress.sessions_done >= 10 and not killed.is_set():
            killed.set()
            server.stop(kill=True)

    with pytest.raises(BackendUnavailable):
        transfer.copy(
            source,
            server.client_url,
            batch_size=12,
            workers=2,
            progress=kill_after_first_batches,
            target_options={"retry_attempts": 1},
        )
    assert killed.is_set()
    server.start()
    partial = totals(server_db_url)
    assert 0 < partial[0] < 41, partial  # some sessions landed, not all
    report = transfer.copy(source, server.client_url, batch_size=12)
    assert report.resumed and report.verify is not None and report.verify.ok, report.verify
    assert totals(server_db_url) == totals(source)  # nothing doubled, nothing lost


def test_a_server_killed_inside_a_batch_then_a_resumed_copy_verifies(
    server: Server, server_db_url: str, tmp_path: Path
) -> None:
    """Killed once the batch's first children are written (the server writes the runs,
    checkpoints and spans one commit each, then the sessions and messages in one
    transaction): the re-run loads the batch again and nothing is doubled."""
    source = build_source(tmp_path / "src.db", 60)
    failed: list[BaseException] = []

    def copy() -> None:
        try:
            transfer.copy(source, server.client_url, target_options={"retry_attempts": 1})
        except BackendUnavailable as exc:
            failed.append(exc)

    copying = threading.Thread(target=copy)
    copying.start()
    served = sqlite3.connect(server_db_url.removeprefix("sqlite:///"))
    deadline = time.monotonic() + 60
    try:
        while served.execute("SELECT count(*) FROM praisondb_runs").fetchone()[0] == 0:
            assert time.monotonic() < deadline, "no run reached the server"
            time.sleep(0.001)  # the polling interval, not a synchronisation
    finally:
        served.close()
    server.stop(kill=True)
    copying.join(timeout=120)
    assert not copying.is_alive() and failed, "the copy went on without its server"
    server.start()
    report = transfer.copy(source, server.client_url)
    assert report.resumed and report.verify is not None and report.verify.ok, report.verify
    assert totals(server_db_url) == totals(source)


def test_copy_out_of_a_server_survives_a_lost_reply_and_a_killed_server(
    server: Server, tmp_path: Path
) -> None:
    source = build_source(tmp_path / "src.db", 24)
    assert transfer.copy(source, server.client_url).verify.ok  # type: ignore[union-attr]
    back = f"sqlite:///{tmp_path / 'back.db'}"
    with FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.drop_reply(b"/messages?", after=5)  # a history read whose reply is lost
        killed = threading.Event()

        def kill_midway(progress: Progress) -> None:
            if progress.sessions_done >= 12 and not killed.is_set():
                killed.set()
                server.stop(kill=True)

        url = f"praisondb+http://{proxy.address}"
        with pytest.raises(BackendUnavailable):
            transfer.copy(
                url,
                back,
                batch_size=10,
                progress=kill_midway,
                source_options={"retry_attempts": 2},
            )
        assert proxy.injected["drop_reply"] == 1 and killed.is_set()
        server.start()
        assert 0 < totals(back)[0] < 25
        report = transfer.copy(url, back, batch_size=10)  # the same source: it resumes
    assert report.resumed and report.verify is not None and report.verify.ok, report.verify
    assert totals(back) == totals(source)


@pytest.mark.parametrize("on_conflict", ["skip", "overwrite", "fail"])
def test_on_conflict_means_the_same_through_the_bulk_route(
    server: Server, server_db_url: str, tmp_path: Path, on_conflict: OnConflict
) -> None:
    source = build_source(tmp_path / "src.db", 6)
    with PraisonDB(server_db_url) as served:  # another session under the same id
        served.session("s2/ü").add_user("not from the source")
    if on_conflict == "fail":
        with pytest.raises(ConflictAbort, match="s2/ü"):
            transfer.copy(source, server.client_url, on_conflict="fail")
        return
    report = transfer.copy(source, server.client_url, on_conflict=on_conflict)
    with PraisonDB(server_db_url) as served:
        kept = [m.content for m in served.messages.list("s2/ü")]
    if on_conflict == "skip":
        assert report.sessions_conflicting == 1 and report.sessions_created == 6
        assert kept == ["not from the source"]
    else:
        assert report.sessions_replaced == 1 and report.sessions_created == 6
        assert kept == [f"hello 2.{k} 🚀" for k in range(3)]
        assert report.verify is not None and report.verify.ok, report.verify


def test_a_served_store_without_transactions_loads_and_resumes(tmp_path: Path) -> None:
    """The server's fallback path (no put_session_batch): JSON files behind the server. A
    session left half-written (provisional record, first message) by a killed load is
    present, so copy resumes it on the per-session path."""
    source = build_source(tmp_path / "src.db", 8)
    served = f"json://{tmp_path / 'served'}"
    with PraisonDB(source) as db:
        info = db.sessions.get("s3/ü")
        first = db.messages.list("s3/ü", limit=1)
    with serve(served, tmp_path, inherit=False) as running:
        half = http_store(running.client_url)
        half.put_session(dataclasses.replace(info, last_seq=0, message_count=0))
        half.put_messages("s3/ü", first)
        half.close()
        report = transfer.copy(source, running.client_url, batch_size=10)
        assert report.verify is not None and report.verify.ok, report.verify
        assert report.messages_copied == 9 * 3 - 1
        assert report.sessions_created == 8 and report.sessions_updated == 1
    assert totals(served) == totals(source)


# -- the route: sizes, idempotency, hostile input -------------------------------------------
def whole(session_id: str, messages: int = 2, text: str = "hi") -> WholeSession:
    now = utcnow()
    info = SessionInfo(
        id=session_id, created_at=now, updated_at=now, message_count=messages, last_seq=messages
    )
    batch = [
        Message(session_id, "user", text, id=f"{session_id[:200]}-m{k}", seq=k, created_at=now)
        for k in range(1, messages + 1)
    ]
    return WholeSession(info, batch)


def body(*items: WholeSession) -> bytes:
    return b"".join(bodies(items, 1 << 30))


@pytest.fixture
def small(app_db: PraisonDB) -> Client:
    return Client(app_db, max_body_bytes=4096)


def test_an_oversized_batch_is_413_with_the_fix(small: Client) -> None:
    reply = small("POST", BULK, content=body(*(whole(f"s{n}") for n in range(20))))
    assert reply.status_code == 413
    problem = reply.json()
    assert problem["error"] == "ValidationError" and "--max-body" in problem["detail"]


def test_the_client_cuts_batches_to_the_servers_max_body(tmp_path: Path) -> None:
    with serve(
        f"sqlite:///{tmp_path / 'served.db'}", tmp_path, inherit=False, args=("--max-body", "4096")
    ) as running:
        store = http_store(running.client_url)
        counting = Counting(store)
        items = [whole(f"s{n}", text="x" * 200) for n in range(12)]
        loaded = store.load_sessions(items)
        assert loaded.inserted == 24 and loaded.present == []
        assert counting.seen["POST /bulk"] >= 3  # cut to fit, none refused
        again = store.load_sessions(items)  # a re-send: every session is present
        assert again.inserted == 0 and sorted(again.present) == sorted(i.info.id for i in items)
        with pytest.raises(ValidationError, match="--max-body"):
            store.load_sessions([whole("huge", text="x" * 8000)])
        assert store.count_messages("s3") == 2
        store.close()


def test_a_present_session_is_left_untouched(app_db: PraisonDB) -> None:
    api = Client(app_db)
    first = whole("a")
    assert api("POST", BULK, content=body(first)).json() == {"inserted": 2, "present": []}
    changed = whole("a", messages=3, text="other")
    reply = api("POST", BULK, content=body(changed, whole("b")))
    assert reply.json() == {"inserted": 2, "present": ["a"]}
    assert [m.content for m in app_db.messages.list("a")] == ["hi", "hi"]


@pytest.mark.parametrize(
    "session_id", ["a/b", "..", ".", "%2F", "a?b#c", "ü 🚀", "~acme~x", " lead", "x" * 255]
)
def test_hostile_ids_are_kept_exactly(app_db: PraisonDB, session_id: str) -> None:
    api = Client(app_db)
    reply = api("POST", BULK, content=body(whole(session_id)))
    assert reply.status_code == 200, reply.text
    assert app_db.messages.count(session_id) == 2


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda b: b["sessions"][0]["session"].update(id="bad\x00id"), 422),
        (lambda b: b["sessions"][0]["session"].update(id=""), 422),
        (lambda b: b["sessions"][0]["session"].update(id="x" * 256), 422),
        (lambda b: b["sessions"][0]["messages"][0].update(role="wizard"), 422),
        (lambda b: b["sessions"][0]["messages"][0].update(seq=0), 422),
        (lambda b: b["sessions"][0].update(extra=[]), 422),
        (lambda b: b["sessions"][0].update(runs={}), 422),
        (lambda b: b.update(sessions={}), 422),
        (lambda b: b["sessions"].append(b["sessions"][0]), 409),
        (lambda b: b["sessions"][0]["messages"][1].update(seq=1), 409),
    ],
)
def test_malformed_batches_are_refused_whole(
    app_db: PraisonDB, change: Callable[[dict[str, Any]], None], status: int
) -> None:
    api = Client(app_db)
    raw: dict[str, Any] = {"sessions": [_record(whole("s"))]}
    change(raw)
    reply = api("POST", BULK, json=raw)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert app_db.sessions.list().items == []


def _record(item: WholeSession) -> dict[str, Any]:
    return {"session": to_record(item.info), "messages": [to_record(m) for m in item.messages]}


def test_nested_records_belong_to_their_session(app_db: PraisonDB) -> None:
    """A message, run or checkpoint naming another session is written under its own."""
    api = Client(app_db)
    app_db.sessions.create(session_id="victim")
    raw = {"sessions": [_record(whole("mine"))]}
    raw["sessions"][0]["messages"][0]["session_id"] = "victim"
    raw["sessions"][0]["runs"] = [to_record(Run("victim", id="r"))]
    raw["sessions"][0]["checkpoints"] = [to_record(Checkpoint("victim", 1, id="c"))]
    raw["sessions"][0]["spans"] = [to_record(Span("t", "n", id="sp", session_id="victim"))]
    reply = api("POST", BULK, json=raw)
    assert reply.status_code == 200, reply.text
    assert app_db.messages.count("victim") == 0 and app_db.messages.count("mine") == 2
    assert app_db.conversations.get_run("r").session_id == "mine"
    assert app_db.conversations.get_span("sp").session_id == "mine"
    assert app_db.conversations.get_checkpoint("c").session_id == "mine"


# -- tenancy ------------------------------------------------------------------------------------
@pytest.fixture
def tenants(app_db: PraisonDB) -> Tenants:
    return Tenants(app_db)


def test_tenants_load_into_their_own_namespace(tenants: Tenants, app_db: PraisonDB) -> None:
    for tenant in ("acme", "globex"):
        reply = tenants(tenant, "POST", BULK, content=body(whole("s", text=tenant)))
        assert reply.json() == {"inserted": 2, "present": []}
    again = tenants("acme", "POST", BULK, content=body(whole("s")))
    assert again.json() == {"inserted": 0, "present": ["s"]}  # in the caller's spelling
    stored = sorted(s.id for s in app_db.sessions.list().items)
    assert stored == ["~acme~s", "~globex~s"]
    for tenant in ("acme", "globex"):
        items = tenants(tenant, "GET", "/sessions/s/messages").json()["items"]
        assert {m["content"] for m in items} == {tenant}
        assert {m["session_id"] for m in items} == {"s"}


def test_a_tenant_cannot_load_into_anothers_sessions(tenants: Tenants, app_db: PraisonDB) -> None:
    tenants("acme", "POST", BULK, content=body(whole("s", text="acme")))
    # the default tenant of a shared server may not spell another's stored ids
    reply = tenants("default", "POST", BULK, content=body(whole("~acme~s", text="evil")))
    assert reply.status_code == 422, reply.text
    # a tenant naming the stored id gets its own, separate session
    tenants("globex", "POST", BULK, content=body(whole("~acme~s", text="evil")))
    assert [m.content for m in app_db.messages.list("~acme~s")] == ["acme", "acme"]
    # a session token reaches its one session only
    other = tenants("acme", "POST", BULK, session="t", content=body(whole("u")))
    assert other.status_code == 404
    own = tenants("acme", "POST", BULK, session="t", content=body(whole("t")))
    assert own.json() == {"inserted": 2, "present": []}
    assert sorted(s.id for s in app_db.sessions.list().items if s.id.startswith("~acme~")) == [
        "~acme~s",
        "~acme~t",
    ]
