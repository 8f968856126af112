"""Chats with one session take turns, across threads and ``praisondb serve`` processes.

A chat holds the session's lease (:meth:`praisondb.Session.lock`, the store's own
compare-and-set lease, so every server process on one store sees it) from before the
prompt is stored until after the reply is: the next chat's agent sees the reply, and the
history reads prompt, reply, prompt, reply. While the agent runs, a task on the server's
event loop renews the lease every third of its TTL (the store call on a worker thread),
so a turn may take longer than the TTL; a server that dies mid-turn stops renewing and
its lease lapses after the TTL, so the next chat proceeds then.

A chat that cannot get its turn within ``--chat-wait`` seconds is refused before anything
of it is stored: a :class:`~praisondb.errors.LockTimeout` (HTTP 409 with ``Retry-After``).
Waiting polls the store with the lease's backoff and holds no worker thread in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .. import clock
from ..core.lock_names import LOCK_SCOPE
from ..core.locks import _MAX_POLL, _MIN_POLL, Lease
from ..errors import ConfigError, LeaseLost, LockTimeout, PraisonDBError

log = logging.getLogger("praisondb.server.turns")

DEFAULT_CHAT_WAIT = 30.0
"""Seconds a chat waits for its session's turn (``--chat-wait``)."""
DEFAULT_CHAT_LEASE = 15.0
"""Seconds a chat's lease lasts unless renewed (``--chat-lease``): how long a session stays
blocked after its server died mid-turn."""
MIN_CHAT_LEASE = 1.0

_cleanups: set[asyncio.Task[None]] = set()
"""Release tasks still running after their request was cancelled (kept from the GC)."""


@dataclass(frozen=True)
class ChatTurns:
    """How chats with one session take turns: ``wait`` for the turn, ``lease`` TTL."""

    wait: float = DEFAULT_CHAT_WAIT
    lease: float = DEFAULT_CHAT_LEASE

    def __post_init__(self) -> None:
        if not 0 <= self.wait <= 3600:
            raise ConfigError(f"--chat-wait must be from 0 to 3600 seconds, not {self.wait!r}")
        if not MIN_CHAT_LEASE <= self.lease <= 3600:
            raise ConfigError(
                f"--chat-lease must be from {MIN_CHAT_LEASE:g} to 3600 seconds, not {self.lease!r}"
            )


@contextlib.asynccontextmanager
async def turn(
    session: Any, settings: ChatTurns, shown_id: str, in_thread: Callable[..., Any]
) -> AsyncIterator[Lease]:
    """Hold ``session``'s lease for the body, renewed while it runs, released after it
    (also on error or cancellation). ``shown_id`` is the id the caller named, for errors."""
    lease: Lease = session.lock(timeout=settings.wait, ttl=settings.lease)
    await _acquire(lease, session.db, settings.wait, shown_id, in_thread)
    renewer = asyncio.ensure_future(_renew(lease, in_thread))
    try:
        yield lease
    finally:
        cleanup = asyncio.ensure_future(_finish(lease, renewer, in_thread))
        _cleanups.add(cleanup)
        cleanup.add_done_callback(_cleanups.discard)
        await asyncio.shield(cleanup)


async def _acquire(
    lease: Lease, db: Any, wait: float, shown_id: str, in_thread: Callable[..., Any]
) -> None:
    deadline = time.monotonic() + wait
    pause = _MIN_POLL
    waiting = False
    try:
        while not await in_thread(lease.try_acquire):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                retry = await in_thread(_retry_after, db, lease)
                exc = LockTimeout(
                    f"session {shown_id!r} is busy: another chat with it was still running "
                    f"after {wait:g} s; retry in {retry} s (chats with one session take "
                    "turns; `praisondb serve --chat-wait SECONDS` waits longer)"
                )
                exc.retry_after = retry
                raise exc
            if not waiting:
                waiting = True
                log.info("a chat waits for its session's turn (another chat holds it)")
            await asyncio.sleep(min(random.uniform(pause / 2, pause), remaining))
            pause = min(pause * 2, _MAX_POLL)
    except BaseException:
        if lease.token is not None:  # won in a try that was cancelled: give it back
            await asyncio.shield(in_thread(_release, lease))
        raise


def _retry_after(db: Any, lease: Lease) -> int:
    """Whole seconds until the holder's lease lapses unless renewed (at least 1)."""
    with contextlib.suppress(PraisonDBError):
        entry = db.state.get_entry(lease.name, scope=LOCK_SCOPE)
        value = entry.value if entry is not None and isinstance(entry.value, dict) else {}
        until = value.get("until")
        if isinstance(until, (int, float)):
            return max(1, math.ceil(until - clock.time()))
    return max(1, math.ceil(lease.ttl))


async def _renew(lease: Lease, in_thread: Callable[..., Any]) -> None:
    """Extend ``lease`` every third of its TTL until cancelled; a store that does not
    answer is tried again at the next tick, a lease taken over ends the renewing."""
    while True:
        await asyncio.sleep(lease.ttl / 3)
        try:
            await in_thread(lease.extend)
        except LeaseLost:
            log.warning(
                "a chat's session lease lapsed mid-turn (the store did not answer for "
                "longer than --chat-lease); another chat may have run meanwhile"
            )
            return
        except PraisonDBError as exc:
            log.warning("renewing a chat's session lease failed: %s", type(exc).__name__)


async def _finish(
    lease: Lease, renewer: asyncio.Future[None], in_thread: Callable[..., Any]
) -> None:
    """Stop renewing (waiting for an extend in flight), then give the lease up."""
    renewer.cancel()
    await asyncio.wait([renewer])
    await in_thread(_release, lease)


def _release(lease: Lease) -> None:
    """Release; a failure is logged, not raised: the exchange is stored by now, and a
    lease that cannot be released lapses after its TTL."""
    try:
        lease.release()
    except LeaseLost:
        log.warning("a chat's session lease was taken over before the turn ended")
    except PraisonDBError as exc:
        log.warning(
            "releasing a chat's session lease failed (%s); it lapses after --chat-lease",
            type(exc).__name__,
        )


__all__ = ["DEFAULT_CHAT_LEASE", "DEFAULT_CHAT_WAIT", "ChatTurns", "turn"]
