"""What praisondb promises beyond the SDK's own stores, on every backend: concurrent pops
each get a different item, items never change order (not even when added in the same
microsecond), a cancelled write is never left half-done, the compaction hook swaps the
whole history at once, and any SDK session id works."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import praisondb.clock
from praisondb import PraisonDB
from praisondb.integrations.openai_agents import (
    KEY,
    MARKER_TEXT,
    REPLACED,
    PraisonDBSession,
    storage_id,
)
from praisondb.model import Message
from tests.integrations.openai_agents.conftest import Opener

POPS = 40


def item(n: int) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": f"call_{n}", "output": str(n)}


@pytest.mark.parametrize("via", ["url", "sync", "async"])
def test_forty_concurrent_pops_return_forty_distinct_items(
    run_with: Any, uid: str, via: str
) -> None:
    """The SDK's #4205: 40 concurrent pop_item() calls returned 26 distinct items."""

    async def main(opener: Opener) -> None:
        await opener.session(uid).add_items([item(n) for n in range(POPS)])
        poppers = [opener.session(uid) for _ in range(4)]  # 4 clients, 10 pops each
        popped = await asyncio.gather(*(poppers[n % 4].pop_item() for n in range(POPS)))
        outputs = [p["output"] for p in popped if p is not None]  # type: ignore[index]
        assert sorted(outputs, key=int) == [str(n) for n in range(POPS)]
        assert await poppers[0].pop_item() is None
        assert await opener.inspect(lambda db: db.messages.count(uid)) == 0

    run_with(main, via)


def test_racing_claims_without_the_per_object_queue(db: PraisonDB, uid: str) -> None:
    """The claim itself, 8 threads on one database with no queue in front: still every
    item exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    from praisondb.integrations.openai_agents import _pop

    async def fill() -> None:
        await PraisonDBSession(uid, db).add_items([item(n) for n in range(POPS)])

    asyncio.run(fill())
    with ThreadPoolExecutor(8) as pool:
        popped = list(pool.map(lambda _: _pop(db, uid), range(POPS + 8)))
    outputs = [p["output"] for p in popped if p is not None]  # type: ignore[index]
    assert sorted(outputs, key=int) == [str(n) for n in range(POPS)]
    assert popped.count(None) == 8


def test_items_added_in_the_same_microsecond_keep_their_order(
    run_with: Any, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's #1900: items added in the same millisecond came back reordered."""
    frozen = praisondb.clock.time_ns()
    monkeypatch.setattr(praisondb.clock, "time_ns", lambda: frozen)

    async def main(opener: Opener) -> None:
        session = opener.session(uid)
        sent = [item(n) for n in range(60)]
        for start in range(0, 60, 7):  # batches of various sizes, one after another
            await session.add_items(sent[start : start + 7])
        assert await session.get_items() == sent
        assert await session.get_items(limit=25) == sent[-25:]
        stamps = await opener.inspect(lambda db: {m.created_at for m in db.messages.list(uid)})
        assert len(stamps) == 1  # every message has the same timestamp; seq orders them

    run_with(main)


def test_get_items_limits_and_session_settings(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        session = opener.session(uid, session_settings={"limit": 3})
        assert await session.get_items() == []
        assert await session.pop_item() is None
        await session.add_items([item(n) for n in range(10)])
        assert await session.get_items() == [item(n) for n in range(7, 10)]
        assert await session.get_items(limit=5) == [item(n) for n in range(5, 10)]
        assert await session.get_items(limit=0) == []
        assert await session.get_items(limit=100) == [item(n) for n in range(10)]
        assert len(await opener.session(uid).get_items()) == 10  # no default limit

    run_with(main)


def test_a_cancelled_add_lands_whole(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        session = opener.session(uid)
        task = asyncio.create_task(session.add_items([item(n) for n in range(5)]))
        await asyncio.sleep(0)  # let the write start, then cancel its caller
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await session.get_items() == [item(n) for n in range(5)]

    run_with(main)


def test_clear_session_keeps_the_praisondb_session(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        session = opener.session(uid)
        await session.add_items([item(1), item(2)])
        await opener.inspect(lambda db: db.state.set("mood", "calm", scope=f"session:{uid}"))
        await session.clear_session()
        assert await session.get_items() == []
        await session.add_items([item(3)])
        assert await session.get_items() == [item(3)]
        state = await opener.inspect(lambda db: db.state.get("mood", scope=f"session:{uid}"))
        assert state == "calm"

    run_with(main)


def test_atomic_replace_swaps_the_whole_history(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        session = opener.session(uid)
        await session.add_items([item(n) for n in range(6)])
        summary = [{"type": "compaction", "encrypted_content": "abc"}, item(99)]
        assert await session._atomic_replace_items(summary) is True
        assert await session.get_items() == summary
        assert await opener.session(uid).get_items(limit=1) == [item(99)]
        assert await opener.inspect(lambda db: db.messages.count(uid)) == 2

    run_with(main)


def test_a_replace_interrupted_after_its_append_already_shows_the_new_history(
    run_with: Any, uid: str
) -> None:
    """A crash between the replace's two steps (the marker and new items appended, the
    old items not yet deleted): readers see the new history, pops never reach the old."""

    async def main(opener: Opener) -> None:
        session = opener.session(uid)
        await session.add_items([item(n) for n in range(4)])

        def append_only(db: PraisonDB) -> None:  # _replace without its delete
            marker = Message(uid, "system", MARKER_TEXT, dict(REPLACED))
            db.messages.extend(uid, [marker, Message(uid, "tool", [item(50)], {KEY: "item"})])

        await opener.inspect(append_only)
        assert await session.get_items() == [item(50)]
        assert await session.get_items(limit=10) == [item(50)]
        assert await session.pop_item() == item(50)
        assert await session.pop_item() is None  # the marker finishes the replace
        assert await opener.inspect(lambda db: db.messages.count(uid)) == 0
        assert await session.get_items() == []

    run_with(main)


def test_subclasses_fall_back_from_the_replace_hook(run_with: Any, uid: str) -> None:
    class Transforming(PraisonDBSession):
        pass

    async def main(opener: Opener) -> None:
        session = Transforming(uid, opener.db())
        opener.sessions.append(session)
        assert await session._atomic_replace_items([item(1)]) is False

    run_with(main)


def test_any_sdk_session_id_is_stored_reversibly(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        odd = ["x" * 300, "line\nbreak", "oa~", "tab\t", "\x7f"]
        ids = ["", *(prefix + uid for prefix in odd), uid]  # all but the last are refused
        for n, session_id in enumerate(ids):
            await opener.session(session_id).add_items([item(n)])
        for n, session_id in enumerate(ids):
            assert await opener.session(session_id).get_items() == [item(n)]
        stored = [storage_id(s) for s in ids]
        assert stored[-1] == uid  # an id praisondb accepts is kept as it is
        assert len(set(stored)) == len(ids)

        def originals(db: PraisonDB) -> list[str | None]:
            found = []
            for sid in stored[:-1]:
                assert sid.startswith("oa~")
                found.append(db.sessions.get(sid).metadata[KEY]["session_id"])
            return found

        assert await opener.inspect(originals) == ids[:-1]

    run_with(main)


def test_messages_written_by_other_faces_read_as_items(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        def written_elsewhere(db: PraisonDB) -> None:
            db.sessions.create(uid)
            db.messages.append(uid, "user", "hello from PraisonAI")
            db.messages.append(
                uid, "assistant", [{"type": "text", "text": "hi "}, {"text": "there"}]
            )

        await opener.inspect(written_elsewhere)
        assert await opener.session(uid).get_items() == [
            {"role": "user", "content": "hello from PraisonAI"},
            {"role": "assistant", "content": "hi there"},
        ]

    run_with(main)
