"""A server that dies and comes back: clients get typed errors, then carry on; message ids
make every re-send safe, so nothing is lost or stored twice. And 100 clients at once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from praisondb import BackendUnavailable, PraisonDB
from praisondb.stores.http import HttpStore
from tests.server.serving import Server
from tests.waiting import eventually

WRITERS, PER_WRITER = 4, 60


def test_writers_survive_a_restart_with_nothing_lost_or_doubled(server: Server) -> None:
    url = server.client_url + "?retry_attempts=1&timeout=10"
    with PraisonDB(url) as db:
        for w in range(WRITERS):
            db.sessions.create(f"w{w}")
    written = Counter[int]()
    failed = Counter[int]()
    errors: list[BaseException] = []
    resume = threading.Event()

    def writer(w: int) -> None:
        try:
            with PraisonDB(url) as db:
                for n in range(PER_WRITER):
                    while True:  # the application's retry: the same id again
                        try:
                            db.messages.append(f"w{w}", "user", f"{w}-{n}", id=f"m{w}-{n}")
                            break
                        except BackendUnavailable:
                            failed[w] += 1
                            resume.wait(60)
                    written[w] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    eventually(lambda: min(written[w] for w in range(WRITERS)) >= 10, 60, "first appends")
    server.stop(kill=True)  # kill -9 mid-write
    eventually(
        lambda: all(failed[w] or written[w] == PER_WRITER for w in range(WRITERS)),
        60,
        "every writer still writing saw the outage",  # one may have finished before it
    )
    assert any(failed.values())
    server.start()
    resume.set()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    with PraisonDB(server.client_url) as db:
        for w in range(WRITERS):
            history = db.messages.list(f"w{w}")
            assert [m.content for m in history] == [f"{w}-{n}" for n in range(PER_WRITER)]
            assert [m.seq for m in history] == list(range(1, PER_WRITER + 1))


def test_a_stream_broken_by_a_restart_is_a_typed_error_and_resumes(server: Server) -> None:
    total = 6_000
    big = "x" * 4_000  # ~24 MB of history: more than the sockets' buffers hold
    with PraisonDB(server.client_url + "?retry_attempts=1") as db:
        db.sessions.create("long")
        for start in range(0, total, 1_000):
            db.messages.extend(
                "long",
                [
                    {"role": "user", "content": big, "id": f"m{n}"}
                    for n in range(start, start + 1_000)
                ],
            )
        store = db.conversations
        assert isinstance(store, HttpStore)
        seqs: list[int] = []

        def read_until_broken() -> None:
            for message in store.stream_messages("long"):
                seqs.append(message.seq)
                if len(seqs) == 100:
                    server.stop(kill=True)

        with pytest.raises(BackendUnavailable, match="stream broke off"):
            read_until_broken()
        with pytest.raises(BackendUnavailable):
            db.sessions.get("long")
        server.start()
        seqs.extend(m.seq for m in store.stream_messages("long", after_seq=seqs[-1]))
    assert seqs == list(range(1, total + 1))


def test_100_concurrent_clients(server: Server) -> None:
    clients, each = 100, 10
    with PraisonDB(server.client_url) as db:
        db.sessions.create("shared")
    errors: list[BaseException] = []
    start = threading.Barrier(clients)

    def client(c: int) -> None:
        try:
            with PraisonDB(server.client_url) as db:
                start.wait(60)
                for n in range(each):
                    db.messages.append("shared", "user", f"{c}-{n}", id=f"c{c}-{n}")
                db.state.incr("hits", scope="app")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors[:3]
    with PraisonDB(server.client_url) as db:
        history = db.messages.list("shared")
        assert [m.seq for m in history] == list(range(1, clients * each + 1))
        assert len({m.id for m in history}) == clients * each
        assert db.state.get("hits", scope="app") == clients
