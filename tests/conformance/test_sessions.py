"""Sessions: create, read, list with stable keyset pages, update, delete with cascade."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from praisondb import Conflict, NotFound, PraisonDB, ValidationError
from tests.backends import TestBackend
from tests.conformance.conftest import spawn_worker


def test_create_and_get_round_trip(db: PraisonDB, uid: str) -> None:
    meta = {"plan": "pro", "nested": {"a.b": [1, 2, {"$x": None}]}, "emoji": "🚀"}
    created = db.sessions.create(
        uid, user_id=f"u-{uid}", agent="support", title="Ünïcødé 标题", metadata=meta
    )
    got = db.sessions.get(uid)
    assert got == created
    assert (got.id, got.user_id, got.agent, got.title) == (
        uid,
        f"u-{uid}",
        "support",
        "Ünïcødé 标题",
    )
    assert got.metadata == meta
    assert got.message_count == 0 and got.last_seq == 0
    assert got.parent_id is None and got.forked_at_seq is None
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    assert abs(got.created_at - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_generated_ids_are_unique_and_time_ordered(db: PraisonDB) -> None:
    ids = [db.sessions.create().id for _ in range(5)]
    assert len(set(ids)) == 5
    assert ids == sorted(ids)


def test_duplicate_create_conflicts_and_missing_get_is_not_found(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    with pytest.raises(Conflict):
        db.sessions.create(uid)
    with pytest.raises(NotFound):
        db.sessions.get(uid + "-missing")
    assert db.sessions.exists(uid) and not db.sessions.exists(uid + "-missing")


def test_get_or_create_returns_the_existing_session(db: PraisonDB, uid: str) -> None:
    first = db.sessions.get_or_create(uid, user_id="u1")
    second = db.sessions.get_or_create(uid, user_id="someone-else")
    assert second.id == first.id and second.user_id == "u1"


def test_list_filters_and_orders_newest_first(db: PraisonDB, uid: str) -> None:
    user = f"u-{uid}"
    made = [
        db.sessions.create(f"{uid}-{i}", user_id=user, agent="a" if i % 2 else "b")
        for i in range(6)
    ]
    db.sessions.create(f"{uid}-other", user_id=f"other-{uid}")
    page = db.sessions.list(user_id=user)
    assert [s.id for s in page.items] == [s.id for s in reversed(made)]
    assert page.next_cursor is None
    only_a = db.sessions.list(user_id=user, agent="a")
    assert {s.id for s in only_a.items} == {s.id for s in made if s.agent == "a"}
    assert db.sessions.count(user_id=user) == 6
    assert db.sessions.count(user_id=user, agent="b") == 3


def test_keyset_pages_cover_everything_once(db: PraisonDB, uid: str) -> None:
    user = f"u-{uid}"
    expected = [db.sessions.create(f"{uid}-{i:02}", user_id=user).id for i in range(23)]
    seen: list[str] = []
    cursor = None
    while True:
        page = db.sessions.list(user_id=user, limit=5, cursor=cursor)
        assert len(page.items) <= 5
        seen += [s.id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(expected))


def test_pagination_is_stable_while_writes_happen(db: PraisonDB, uid: str) -> None:
    user = f"u-{uid}"
    original = [db.sessions.create(f"{uid}-{i:02}", user_id=user).id for i in range(20)]
    seen: list[str] = []
    cursor = None
    round_ = 0
    while True:
        page = db.sessions.list(user_id=user, limit=6, cursor=cursor)
        seen += [s.id for s in page.items]
        # writes between pages: new sessions, and activity on sessions not yet listed
        db.sessions.create(f"{uid}-new-{round_}", user_id=user)
        db.messages.append(original[round_], "user", "activity")
        db.sessions.update(original[-1 - round_], title=f"touched {round_}")
        round_ += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a session was listed twice"
    assert set(original) <= set(seen), "a session that existed before paging began was skipped"


def test_invalid_cursor_is_a_validation_error(db: PraisonDB) -> None:
    with pytest.raises(ValidationError):
        db.sessions.list(cursor="not-a-cursor!!")


def test_updated_filters(db: PraisonDB, uid: str) -> None:
    user = f"u-{uid}"
    old = db.sessions.create(f"{uid}-old", user_id=user)
    boundary = datetime.now(timezone.utc)
    new = db.sessions.create(f"{uid}-new", user_id=user)
    db.messages.append(new.id, "user", "bump")
    after = db.sessions.list(user_id=user, updated_after=boundary).items
    before = db.sessions.list(user_id=user, updated_before=boundary).items
    assert [s.id for s in after] == [new.id]
    assert [s.id for s in before] == [old.id]


def test_update_merges_or_replaces_metadata_and_bumps_updated_at(db: PraisonDB, uid: str) -> None:
    created = db.sessions.create(uid, title="t", metadata={"a": 1, "b": {"x": 1}})
    updated = db.sessions.update(uid, metadata={"b": {"y": 2}, "c": 3})
    assert updated.metadata == {"a": 1, "b": {"y": 2}, "c": 3}
    assert updated.title == "t"
    assert updated.updated_at >= created.updated_at
    renamed = db.sessions.update(uid, title=None)
    assert renamed.title is None
    replaced = db.sessions.update(uid, metadata={"only": True}, replace_metadata=True)
    assert replaced.metadata == {"only": True}
    assert db.sessions.get(uid).metadata == {"only": True}
    with pytest.raises(NotFound):
        db.sessions.update(uid + "-missing", title="x")


def test_delete_cascades(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    db.messages.extend(uid, [{"role": "user", "content": f"m{i}"} for i in range(5)])
    db.state.set("k", "v", scope=f"session:{uid}")
    checkpoint = db.checkpoints.create(uid, label="cp")
    run = db.runs.start(uid, model="m")
    assert db.sessions.delete(uid) is True
    assert not db.sessions.exists(uid)
    assert db.messages.list(uid) == []
    assert db.messages.count(uid) == 0
    assert db.state.get("k", scope=f"session:{uid}") is None
    assert db.checkpoints.list(uid) == []
    with pytest.raises(NotFound):
        db.checkpoints.get(checkpoint.id)
    with pytest.raises(NotFound):
        db.runs.get(run.id)
    assert db.sessions.delete(uid) is False
    # the id can be used again, starting from a clean slate
    again = db.sessions.create(uid)
    assert again.message_count == 0 and db.messages.list(uid) == []


def test_branches_are_listable_by_parent(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    db.sessions.create(f"{uid}-b1", parent_id=uid, forked_at_seq=3)
    branch = db.sessions.get(f"{uid}-b1")
    assert (branch.parent_id, branch.forked_at_seq) == (uid, 3)
    assert [s.id for s in db.sessions.list(parent_id=uid).items] == [f"{uid}-b1"]


@pytest.mark.usefixtures("multi_process")
def test_processes_opening_a_brand_new_store_at_once(
    backend: TestBackend,
    tmp_path_factory: pytest.TempPathFactory,
    face: str,
    open_db: Callable[..., PraisonDB],
) -> None:
    """First use creates schema, collections or files; racing processes must all succeed."""
    with backend.factory(tmp_path_factory.mktemp("fresh")) as url:
        workers = [spawn_worker("first-open", url, f"first-{n}", face=face) for n in range(4)]
        for proc in workers:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        with open_db(url) as db:
            assert sorted(s.id for s in db.sessions.iterate()) == [f"first-{n}" for n in range(4)]
            assert all(db.messages.count(f"first-{n}") == 1 for n in range(4))
