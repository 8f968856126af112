"""A server that is gone, before the first call or in the middle of a run.

The ``stop_server`` fixture routes the store through a fault proxy that can stop the
server as the store sees it and bring it back, so one test covers every server backend
and the shared servers never stop. What must hold: the failure is BackendUnavailable,
within the configured timeouts, with no password in it; what was acknowledged before
survives, whole batches only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import pytest

from praisondb import BackendUnavailable, PraisonDB
from praisondb.urls import SCHEMES
from tests.backends import TestBackend
from tests.conformance.conftest import StoppableServer
from tests.faults.targets import SERVER_BACKENDS, STOPPABLE
from tests.waiting import eventually

PASSWORDS = ("P4ss%40W0rd-Xy", "P4ss-W0rd-Xy")  # encoded "@": no decoded form may leak
SECRETS = ("P4ss", "W0rd")
QUICK = {
    # the SQL stores take a driver connect timeout and always make 3 attempts
    "postgres": ("connect_timeout=1", 3, "reachable"),
    "mysql": ("connect_timeout=1", 3, "reachable"),
    "redis": ("timeout=0.5&retry_attempts=2", 2, ""),
    "redis_cluster": ("cluster=true&timeout=0.5&retry_attempts=2", 2, ""),
    "mongodb": ("directConnection=true&timeout=0.5&retry_attempts=2", 2, ""),
    "http": ("timeout=0.5&connect_timeout=0.5&retry_attempts=2", 2, "praisondb serve"),
}
"""Per backend: URL options for a quick give-up, the attempts they make, and a word of
the hint the message gives (only the SQL stores ask whether the server is reachable)."""


def unreachable_urls(backend: TestBackend, url: str, address: str) -> list[str]:
    """``url`` pointed at ``address`` with a password and the backend's QUICK options; a
    scheme that names its driver (``postgresql+psycopg``) is tried without it too."""
    parts = urlsplit(url)
    user = parts.username or "app"
    query = parts.query.split("&") if parts.query else []
    kept = [q for q in query if q.startswith("prefix=")]  # drop the usual timeouts
    options = "&".join([*kept, QUICK[backend.name][0]])
    base = parts.scheme.split("+", 1)[0]  # praisondb+http names no driver: no base scheme
    schemes = dict.fromkeys([parts.scheme, *([base] if base in SCHEMES else [])])
    return [
        urlunsplit((scheme, f"{user}:{password}@{address}", parts.path, options, ""))
        for scheme, password in zip(schemes, PASSWORDS, strict=False)
    ]


@pytest.mark.backends(*STOPPABLE)
def test_an_unreachable_server_is_backend_unavailable_and_redacted(
    backend: TestBackend,
    backend_url: str,
    stop_server: StoppableServer,
    open_db: Callable[..., PraisonDB],
) -> None:
    stop_server.stop()
    for url in unreachable_urls(backend, backend_url, stop_server.proxy.address):
        refused = stop_server.proxy.injected["refused"]
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as caught, open_db(url) as db:
            db.ping()
        assert time.monotonic() - started < 3, f"not within the configured timeout: {url}"
        error = caught.value
        text = f"{error} {error.url} {error!r}"
        assert not [s for s in SECRETS if s in text], text
        assert "***" in str(error), str(error)
        _options, attempts, hint = QUICK[backend.name]
        assert error.attempts == attempts and "attempts" in str(error) and hint in str(error)
        assert stop_server.proxy.injected["refused"] > refused, "the server was never tried"


# A cluster client that has connected knows the nodes' own addresses and would bypass the
# single proxy of stop_server; the fault suite drives the cluster through a proxy per node.
@pytest.mark.backends(*(name for name in SERVER_BACKENDS if name != "redis_cluster"))
def test_a_server_stopped_mid_run_fails_fast_and_keeps_whole_batches(
    db: PraisonDB, stop_server: StoppableServer, uid: str, open_db: Callable[..., PraisonDB]
) -> None:
    """A writer extends 10 messages at a time until the server stops under it."""
    errors: list[BaseException] = []
    failed_at: list[float] = []
    written = threading.Event()
    with open_db(stop_server.url) as faulty:
        faulty.sessions.create(uid)

        def writer() -> None:
            try:
                while True:
                    faulty.messages.extend(uid, [{"role": "user", "content": "x" * 100}] * 10)
                    written.set()
            except BaseException as exc:
                failed_at.append(time.monotonic())
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        eventually(written.is_set, 30, "a first acknowledged batch")
        stopped = time.monotonic()
        stop_server.stop()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert isinstance(errors[0], BackendUnavailable), errors
        assert failed_at[0] - stopped < 3 * 1 + 3, "not within the configured timeout"
        with pytest.raises(BackendUnavailable):
            faulty.sessions.get(uid)
        stop_server.heal()
        assert faulty.sessions.get(uid).id == uid, "the store does not recover once healed"
    info = db.sessions.get(uid)
    messages = db.messages.list(uid)
    assert info.message_count == len(messages) == info.last_seq > 0
    assert len(messages) % 10 == 0, "a batch was half stored"
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
