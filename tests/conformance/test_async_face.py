"""What only the async face can get wrong, on every backend (issue 11).

The rest of the suite runs on the async face through a sync lens (tests/faces.py); these
tests drive :class:`~praisondb.aio.AsyncPraisonDB` on asyncio directly, because what they
check has no sync shape: many tasks on one loop, cancellation landing mid-I/O, closing
with calls in flight, async iteration, and a loop that keeps serving others meanwhile.
Each test runs on its own loop (``asyncio.run``) under a deadline, so a hang fails.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from praisondb import DatabaseClosed, Message
from praisondb.aio import AsyncPraisonDB, AsyncSession
from praisondb.stores import async_io
from praisondb.urls import parse_url

T = TypeVar("T")

DEADLINE = 180.0
"""Seconds a whole test may take before it fails as a hang."""


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``main()`` on a fresh event loop; a test that hangs fails after DEADLINE."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), DEADLINE)

    return asyncio.run(bounded())


def opened(url: str) -> AsyncPraisonDB:
    return AsyncPraisonDB(url, auto_migrate=True)


def batch(tag: str, size: int) -> list[dict[str, Any]]:
    """``size`` messages whose content and metadata name their batch and place in it."""
    return [
        {"role": "user", "content": f"{tag}/{n}", "metadata": {"tag": tag, "n": n}}
        for n in range(size)
    ]


def assert_gap_free(messages: list[Message]) -> None:
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    assert len({m.id for m in messages}) == len(messages)


def assert_batches_whole(messages: list[Message], sizes: dict[str, int]) -> Counter[str]:
    """Every batch tagged in ``sizes`` is stored completely, in order, or not at all."""
    tags = Counter(m.metadata["tag"] for m in messages)
    for tag, size in sizes.items():
        assert tags[tag] in (0, size), f"batch {tag}: {tags[tag]} of {size} messages stored"
        if tags[tag]:
            mine = [m.content for m in messages if m.metadata["tag"] == tag]
            assert mine == [f"{tag}/{n}" for n in range(size)]
    return tags


async def settle(task: asyncio.Task[Any]) -> BaseException | None:
    """Wait for a (cancelled) task to end; its exception, or None if it completed."""
    try:
        await task
    except (asyncio.CancelledError, TimeoutError, asyncio.TimeoutError) as exc:
        return exc
    return None


# -- many tasks on one loop ------------------------------------------------------------------


SESSIONS, PER_SESSION = 200, 20


def test_200_concurrent_sessions_on_one_loop_get_exact_results(backend_url: str, uid: str) -> None:
    async def one(db: AsyncPraisonDB, i: int) -> None:
        sid = f"{uid}-{i}"
        await db.sessions.create(sid)
        written, step = 0, 0
        while written < PER_SESSION:
            size = min((i + step) % 4 + 1, PER_SESSION - written)  # 1: append, 2-4: extend
            if size == 1:
                await db.messages.append(sid, "user", f"{i}/{written}", {"n": written})
            else:
                await db.messages.extend(
                    sid,
                    [
                        {"role": "user", "content": f"{i}/{n}", "metadata": {"n": n}}
                        for n in range(written, written + size)
                    ],
                )
            written, step = written + size, step + 1

    async def main() -> None:
        async with opened(backend_url) as db:
            await asyncio.gather(*(one(db, i) for i in range(SESSIONS)))
            stored = await asyncio.gather(
                *(db.messages.list(f"{uid}-{i}") for i in range(SESSIONS))
            )
            counts = await asyncio.gather(
                *(db.messages.count(f"{uid}-{i}") for i in range(SESSIONS))
            )
        for i, messages in enumerate(stored):
            assert_gap_free(messages)
            assert [m.content for m in messages] == [f"{i}/{n}" for n in range(PER_SESSION)]
            assert [m.metadata for m in messages] == [{"n": n} for n in range(PER_SESSION)]
            assert {m.session_id for m in messages} == {f"{uid}-{i}"}
        assert counts == [PER_SESSION] * SESSIONS

    run(main)


# -- cancellation ------------------------------------------------------------------------------


CANCEL_POINTS = 40
BATCH = 20


def test_a_cancelled_append_is_whole_or_absent_and_the_db_stays_usable(
    backend_url: str, uid: str
) -> None:
    """Cancel appends and batches at many points: after k turns of the loop (k < 20), then
    by ``wait_for`` timeouts growing from 0.1 ms, so on a server some land mid-I/O."""

    async def main() -> None:
        async with opened(backend_url) as db:
            await db.sessions.create(uid)
            sizes: dict[str, int] = {}
            outcomes: Counter[str] = Counter()
            for k in range(CANCEL_POINTS):
                tag = f"c{k}"
                sizes[tag] = 1 if k % 3 == 0 else BATCH
                if sizes[tag] == 1:
                    call: Awaitable[Any] = db.messages.append(uid, "user", f"{tag}/0", {"tag": tag})
                else:
                    call = db.messages.extend(uid, batch(tag, BATCH))
                if k < CANCEL_POINTS // 2:
                    task = asyncio.ensure_future(call)
                    for _ in range(k):
                        await asyncio.sleep(0)  # one turn of the loop: the cancel lands k turns in
                    task.cancel()
                else:
                    timeout = 0.0001 * 1.4 ** (k - CANCEL_POINTS // 2)
                    task = asyncio.ensure_future(asyncio.wait_for(call, timeout))
                outcome = await settle(task)
                outcomes[type(outcome).__name__] += 1

                fresh = await db.messages.list(uid)
                assert_gap_free(fresh)
                tags = assert_batches_whole(fresh, sizes)
                if outcome is None:  # it completed before the cancel: all of it is there
                    assert tags[tag] == sizes[tag]
                after = await db.messages.append(uid, "user", f"a{k}/0", {"tag": f"a{k}"})
                sizes[f"a{k}"] = 1
                assert after.seq == len(fresh) + 1, "the next append gets the next seq"
            await more_ops_than_any_pool(db, uid)
            final = await db.messages.list(uid)
        assert_gap_free(final)
        tags = assert_batches_whole(final, sizes)
        assert all(tags[f"a{k}"] == 1 for k in range(CANCEL_POINTS))
        assert outcomes["CancelledError"] + outcomes["TimeoutError"] > 0, outcomes

    run(main)


async def more_ops_than_any_pool(db: AsyncPraisonDB, uid: str, tasks: int = 64) -> None:
    """Many concurrent calls (more than any pool holds connections): a connection a
    cancelled call left broken or checked out would fail or starve some of them."""
    await asyncio.gather(*(db.sessions.create(f"{uid}-pool-{n}") for n in range(tasks)))
    results = await asyncio.gather(
        *(db.messages.append(f"{uid}-pool-{n}", "user", "x") for n in range(tasks)),
        *(db.messages.count(uid) for _ in range(tasks)),
    )
    assert [m.seq for m in results[:tasks]] == [1] * tasks
    assert len(set(results[tasks:])) == 1


# -- the session lock ------------------------------------------------------------------------------


async def hold_until_cancelled(session: AsyncSession, entered: asyncio.Event) -> None:
    async with session.lock(timeout=60):
        entered.set()
        await asyncio.Event().wait()  # holds the lease until cancelled


async def token_step(session: AsyncSession) -> int:
    """How much the fencing token grows from one holder to the next, nobody in between."""
    async with session.lock(timeout=5) as first:
        before = first.token
    async with session.lock(timeout=5) as second:
        after = second.token
    assert before is not None and after is not None and after > before
    return after - before


AT_RELEASE = 4
"""Rounds that cancel a waiter in the same turn of the loop as the lease frees."""


def test_a_cancelled_lock_waiter_takes_no_lease(backend_url: str, uid: str) -> None:
    """A waiter cancelled while the lease is held never holds it: the next holder's token
    follows the last holder's. One cancelled just as the lease frees may have taken it an
    instant before the cancel reached it; then it has given it back by the time its
    cancellation ends, and the next acquirer gets the lease at once either way."""

    async def main() -> None:
        async with opened(backend_url) as db:
            session = await db.session(uid)
            step = await token_step(session)
            for round_ in range(1 + AT_RELEASE):
                at_release = round_ > 0
                holder = await session.lock(timeout=5).acquire()
                held = holder.token
                assert held is not None
                entered = asyncio.Event()
                waiter = asyncio.ensure_future(hold_until_cancelled(session, entered))
                # The behaviour under test: the waiter stays blocked while the lease is held.
                done, _ = await asyncio.wait({waiter}, timeout=0.3)
                assert not done and not entered.is_set()
                if at_release:
                    await holder.release()
                    waiter.cancel()  # the lease is free again this very turn of the loop
                else:
                    waiter.cancel()
                    await settle(waiter)
                    await holder.release()
                assert isinstance(await settle(waiter), asyncio.CancelledError)
                # held throughout, it never got in; cancelled as the lease freed, it may have
                # (memory:// has no I/O, so it can take the lease during release's own turn)
                assert at_release or not entered.is_set()
                async with session.lock(timeout=0) as third:  # at once: nobody else holds it
                    grown = {held + step, held + 2 * step} if at_release else {held + step}
                    assert third.token in grown, "the cancelled waiter kept the lease"

    run(main)


# -- closing with calls in flight ----------------------------------------------------------


WRITERS, MOST = 50, 500
"""Writers, and the most batches one writes: a writer that runs out was never stopped by
close (the loop was starved, say), and the test ends with a failure instead of a hang."""


def test_closing_fails_calls_in_flight_with_database_closed(backend_url: str, uid: str) -> None:
    sizes: dict[str, int] = {}
    written: set[str] = set()

    async def writer(db: AsyncPraisonDB, n: int, all_writing: asyncio.Event) -> None:
        sid = f"{uid}-{n}"
        await db.sessions.create(sid)
        for k in range(MOST):
            tag = f"{n}.{k}"
            sizes[tag] = 1 + k % 5
            await db.messages.extend(sid, batch(tag, sizes[tag]))
            written.add(sid)
            if len(written) == WRITERS:
                all_writing.set()

    async def main() -> None:
        db = opened(backend_url)
        await db.ping()
        all_writing = asyncio.Event()
        writers = [asyncio.ensure_future(writer(db, n, all_writing)) for n in range(WRITERS)]
        ready = asyncio.ensure_future(all_writing.wait())
        await asyncio.wait({ready, *writers}, return_when=asyncio.FIRST_COMPLETED)
        assert ready.done(), (
            "a writer finished before every writer had written once (a starved loop?): "
            f"{[w.exception() for w in writers if w.done()]}"
        )
        await asyncio.wait_for(db.close(), 30)  # every writer has a call in flight or next
        done, pending = await asyncio.wait(writers, timeout=30)
        assert not pending, f"{len(pending)} calls still hang after close"
        errors = [w.exception() for w in done]
        ran_out = errors.count(None)
        assert not ran_out, f"{ran_out} writers wrote all {MOST} batches, never stopped by close"
        assert all(isinstance(e, DatabaseClosed) for e in errors), errors

        async with opened(backend_url) as fresh:
            for n in range(WRITERS):
                stored = await fresh.messages.list(f"{uid}-{n}")
                assert_gap_free(stored)
                assert_batches_whole(
                    stored, {t: s for t, s in sizes.items() if t.startswith(f"{n}.")}
                )

    run(main)


# -- async iteration ---------------------------------------------------------------------------


LONG = 5_000


def test_async_iteration_over_a_long_session(backend_url: str, uid: str) -> None:
    async def main() -> None:
        async with opened(backend_url) as db:
            await db.sessions.create(uid)
            for start in range(0, LONG, 500):
                await db.messages.extend(
                    uid, [{"role": "user", "content": f"m{n}"} for n in range(start, start + 500)]
                )
            expected = [f"m{n}" for n in range(LONG)]
            seen = [m.content async for m in db.messages.iter(uid)]
            assert seen == expected
            small = [m.seq async for m in db.messages.iter(uid, after_seq=10, batch=333)]
            assert small == list(range(11, LONG + 1))
            session = await db.session(uid)
            messages = [m async for m in session]
            assert [m.content for m in messages] == expected
            assert_gap_free(messages)

    run(main)


# -- the loop keeps serving others -------------------------------------------------------------


def test_the_loop_is_never_blocked(backend_url: str, uid: str) -> None:
    """A ticker keeps ticking while 200 tasks append. A correctness check, not a benchmark
    (tools/bench_async.py measures lag): a core call that held the loop (blocking I/O or a
    wait on the loop's thread, a call that never yields) would stop the ticker. Asserted
    where the bridge runs calls in greenlets on the loop itself; on worker threads the
    GIL's switching decides the lag, and only the appends are checked."""
    on_greenlets = async_io(parse_url(backend_url)) in ("driver", "inline")

    async def main() -> tuple[float, float, list[list[Message]]]:
        async with opened(backend_url) as db:
            await db.ping()
            stop = asyncio.Event()
            ticks: list[float] = []

            async def ticker() -> None:
                while not stop.is_set():
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.001)  # the ticker's interval, the behaviour measured

            async def writer(i: int) -> None:
                await db.sessions.create(f"{uid}-{i}")
                for n in range(10):
                    await db.messages.append(f"{uid}-{i}", "user", f"{n}")

            tick = asyncio.ensure_future(ticker())
            started = time.monotonic()
            await asyncio.gather(*(writer(i) for i in range(200)))
            ended = time.monotonic()
            stop.set()
            await tick
            stored = [await db.messages.list(f"{uid}-{i}") for i in range(200)]
        stamps = [started, *(t for t in ticks if t >= started), ended]
        return max(b - a for a, b in itertools.pairwise(stamps)), ended - started, stored

    gap, total, stored = run(main)
    assert all([m.content for m in s] == [f"{n}" for n in range(10)] for s in stored)
    if on_greenlets:
        # A core that held the loop runs all its tasks' calls without letting the ticker
        # in: one stretch of nearly the whole run. Relative to the run, so a loaded
        # machine, which stretches both, does not fail it by a scheduling pause.
        load = os.getloadavg()[0]
        assert gap < max(0.75 * total, 0.5), (
            f"the loop stood still for {gap:.3f} s of a {total:.3f} s run (load average {load:.1f})"
        )
