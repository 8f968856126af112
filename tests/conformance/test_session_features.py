"""Session features (history, state, checkpoints, branches, versions, merge, compaction,
rotation, cleanup, tokens, export/import), run on every backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from praisondb import NotFound, PraisonDB, Session, ValidationError
from praisondb.core.tokens import InvalidToken, TokenExpired
from praisondb.model import utcnow
from praisondb.stores.base import Capability
from tests.backends import TestBackend
from tests.conftest import FakeClock


def _texts(session: Session) -> list[str]:
    return [m.content for m in session.history()]  # type: ignore[misc]


def test_session_is_get_or_create_and_keeps_history(db: PraisonDB, uid: str) -> None:
    s = db.session(uid, user_id=f"u-{uid}", agent="support")
    assert s.id == uid and s.user_id == f"u-{uid}" and s.agent == "support"
    s.add_user("hi", {"lang": "en"})
    s.add_assistant("hello!")
    s.add_tool("42", tool_name="calc", tool_call_id="call-1")
    s.add("system", [{"type": "text", "text": "blocks"}])
    again = db.session(uid)
    assert again.user_id == f"u-{uid}"
    history = again.history()
    assert [m.role for m in history] == ["user", "assistant", "tool", "system"]
    assert [m.seq for m in history] == [1, 2, 3, 4]
    assert history[0].metadata == {"lang": "en"}
    assert history[2].metadata == {"tool_name": "calc", "tool_call_id": "call-1"}
    assert history[3].content == [{"type": "text", "text": "blocks"}]
    assert [m.content for m in again.history(last=2)] == [
        "42",
        [{"type": "text", "text": "blocks"}],
    ]


def test_deferred_writes_are_flushed_by_reads_and_on_exit(db: PraisonDB, uid: str) -> None:
    with db.session(uid) as s:
        s.add_user("one", defer=True)
        s.add_assistant("two", defer=True)
        assert db.messages.count(uid) == 0
        assert _texts(s) == ["one", "two"]  # reads flush first
        s.add_user("three", defer=True)
    assert [m.content for m in db.messages.list(uid)] == ["one", "two", "three"]


def test_scoped_state_views(db: PraisonDB, uid: str) -> None:
    s = db.session(uid, user_id=f"u-{uid}")
    s.state["step"] = 1
    s.state.update({"a": [1, 2]}, b={"nested": True})
    s.user_state.set("lang", "en")
    s.app_state.set(f"flag-{uid}", True)
    other = db.session(f"{uid}-other", user_id=f"u-{uid}")
    assert other.user_state["lang"] == "en"  # user scope is shared by the user's sessions
    assert "step" not in other.state
    assert s.state.to_dict() == {"step": 1, "a": [1, 2], "b": {"nested": True}}
    assert len(s.state) == 3 and sorted(s.state) == ["a", "b", "step"]
    assert s.state.get("missing", "dflt") == "dflt"
    with pytest.raises(KeyError):
        _ = s.state["missing"]
    del s.state["a"]
    assert "a" not in s.state
    assert s.state.delete("a") is False
    assert s.state.incr("visits") == 1 and s.state.incr("visits", 2) == 3
    assert db.state.get(f"flag-{uid}") is True
    with pytest.raises(ValidationError):
        _ = db.session(f"{uid}-anon").user_state


def test_state_ttl(db: PraisonDB, uid: str, clock: FakeClock) -> None:
    s = db.session(uid)
    s.state.set("short", "x", ttl=0.3)
    s.state.set("long", "y", ttl=timedelta(hours=1))
    entry = s.state.entry("long")
    assert entry is not None and entry.expires_at is not None
    assert s.state.get("short") == "x"
    clock.advance(0.5)
    assert s.state.get("short") is None
    assert s.state.to_dict() == {"long": "y"}


def test_temp_values_are_never_persisted(
    db: PraisonDB,
    backend: TestBackend,
    backend_url: str,
    uid: str,
    open_db: Callable[..., PraisonDB],
) -> None:
    s = db.session(uid)
    other = db.session(f"{uid}-2")
    s.temp["scratch"] = {"draft": 1}
    other.temp["scratch"] = "other"
    assert s.temp["scratch"] == {"draft": 1} and other.temp["scratch"] == "other"
    assert s.temp.to_dict() == {"scratch": {"draft": 1}}
    assert db.state_store.list_entries("temp") == []  # not in the persistent store
    if Capability.PERSISTENT in backend.capabilities():  # a fresh handle sees the same data
        with open_db(backend_url) as fresh:
            assert fresh.session(uid).temp.to_dict() == {}


def test_preferences_live_in_user_scope(db: PraisonDB, uid: str) -> None:
    s = db.session(uid, user_id=f"u-{uid}")
    s.update_preference("theme", "dark")
    s.update_preference("units", "metric")
    later = db.session(f"{uid}-later", user_id=f"u-{uid}")
    assert later.preferences() == {"theme": "dark", "units": "metric"}
    assert db.state.get("pref:theme", scope=f"user:u-{uid}") == "dark"


def test_restore_moves_later_turns_to_a_branch_and_loses_nothing(db: PraisonDB, uid: str) -> None:
    s = db.session(uid, user_id="u", agent="a")
    s.add_user("q1")
    s.add_assistant("a1")
    s.state["plan"] = "A"
    cp = s.checkpoint("before-change")
    assert cp.seq == 2 and cp.state == {"plan": "A"} and cp.label == "before-change"
    s.add_user("q2")
    s.add_assistant("a2")
    s.state["plan"] = "B"
    s.state["extra"] = 1
    branch = s.restore("before-change")  # by label
    assert branch is not None
    assert _texts(s) == ["q1", "a1"]
    assert s.state.to_dict() == {"plan": "A"}
    assert _texts(branch) == ["q1", "a1", "q2", "a2"]
    assert branch.state.to_dict() == {"plan": "B", "extra": 1}
    info = db.sessions.get(branch.id)
    assert info.parent_id == uid and info.forked_at_seq == 2
    assert info.user_id == "u" and info.agent == "a"
    assert [b.id for b in s.branches()] == [branch.id]
    assert [b.id for b in db.sessions.list(parent_id=uid).items] == [branch.id]
    copies = branch.history()
    originals = {m.content: m.id for m in db.messages.list(branch.id)}
    assert all(m.metadata.get("praisondb_origin_id") for m in copies)
    assert len(set(originals.values())) == 4
    s.add_user("q3")  # seq values are never reused after the rollback
    assert s.history()[-1].seq == 5
    assert s.restore(s.checkpoint()) is None  # nothing to roll back


def test_restore_rejects_a_foreign_checkpoint(db: PraisonDB, uid: str) -> None:
    a, b = db.session(uid), db.session(f"{uid}-b")
    a.add_user("x")
    with pytest.raises(ValidationError):
        b.restore(a.checkpoint())
    with pytest.raises(NotFound):
        a.restore("no-such-checkpoint")


def test_fork_makes_an_independent_branch(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)
    s.add_user("one")
    s.state["k"] = 1
    cp = s.checkpoint()
    s.add_user("two")
    s.state["k"] = 2
    at_cp = s.fork(cp, session_id=f"{uid}-fork")
    now = s.fork()
    assert at_cp.id == f"{uid}-fork"
    assert _texts(at_cp) == ["one"] and at_cp.state.to_dict() == {"k": 1}
    assert _texts(now) == ["one", "two"] and now.state.to_dict() == {"k": 2}
    at_cp.add_user("diverged")
    assert _texts(s) == ["one", "two"]
    assert db.sessions.get(at_cp.id).forked_at_seq == 1
    assert {b.id for b in s.branches()} == {at_cp.id, now.id}


def test_versions(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)
    s.add_user("draft 1")
    assert s.save_version("first draft") == 1
    s.add_user("draft 2")
    s.state["status"] = "reviewed"
    assert s.save_version("second draft") == 2
    s.add_user("draft 3")
    versions = s.list_versions()
    assert [(v.number, v.description) for v in versions] == [
        (1, "first draft"),
        (2, "second draft"),
    ]
    kept = s.restore_version(1)
    assert _texts(s) == ["draft 1"] and s.state.to_dict() == {}
    assert kept is not None and _texts(kept) == ["draft 1", "draft 2", "draft 3"]
    s.restore_version(2)
    assert _texts(s) == ["draft 1"]  # version 2's messages were moved, the state comes back
    assert s.state.to_dict() == {"status": "reviewed"}
    with pytest.raises(NotFound):
        s.restore_version(9)


def test_merge_interleaves_by_time_and_leaves_sources_alone(db: PraisonDB, uid: str) -> None:
    a = db.session(f"{uid}-a", user_id="u")
    b = db.session(f"{uid}-b", user_id="u")
    a.add_user("a1")
    b.add_user("b1")
    a.add_assistant("a2")
    b.add_assistant("b2")
    a.state.update(shared="from-a", only_a=1)
    b.state.update(shared="from-b", only_b=2)
    merged = a.merge(b, session_id=f"{uid}-m")
    assert merged.id == f"{uid}-m"
    assert _texts(merged) == ["a1", "b1", "a2", "b2"]
    assert [m.seq for m in merged.history()] == [1, 2, 3, 4]
    assert merged.state.to_dict() == {"shared": "from-a", "only_a": 1, "only_b": 2}
    assert _texts(a) == ["a1", "a2"] and _texts(b) == ["b1", "b2"]
    assert db.sessions.get(merged.id).metadata["praisondb_sources"] == [a.id, b.id]


def test_compact_archives_instead_of_deleting(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)
    for i in range(6):
        s.add_user(f"m{i}")
    seen: list[str] = []

    def summarize(messages: list) -> str:  # type: ignore[type-arg]
        seen.extend(m.content for m in messages)
        return f"{len(messages)} earlier messages about m"

    note = s.compact(keep_last=2, summary=summarize)
    assert note is not None and seen == ["m0", "m1", "m2", "m3"]
    history = s.history()
    assert [(m.seq, m.role, m.content) for m in history] == [
        (4, "system", "4 earlier messages about m"),
        (5, "user", "m4"),
        (6, "user", "m5"),
    ]
    assert [m.content for m in s.archived()] == ["m0", "m1", "m2", "m3"]
    assert [m.seq for m in s.archived()] == [1, 2, 3, 4]
    assert s.summary is not None and s.summary.content == "4 earlier messages about m"
    assert [m.content for m in s.context(last=1)] == ["4 earlier messages about m", "m5"]
    assert [m.content for m in s.context(last=3)] == [m.content for m in history]
    s.add_user("m6")
    assert s.history()[-1].seq == 7
    assert s.compact(keep_last=10, summary="unused") is None
    assert s.branches() == []  # archives are not branches


def test_rotate_starts_a_linked_successor(db: PraisonDB, uid: str) -> None:
    s = db.session(uid, user_id="u")
    s.add_user("long conversation")
    s.state["topic"] = "billing"
    nxt = s.rotate(summary="we discussed billing", session_id=f"{uid}-2")
    assert nxt.id == f"{uid}-2"
    assert [(m.role, m.content) for m in nxt.history()] == [("system", "we discussed billing")]
    assert nxt.state.to_dict() == {"topic": "billing"}
    assert db.sessions.get(uid).metadata["praisondb_successor"] == nxt.id
    info = db.sessions.get(nxt.id)
    assert info.parent_id == uid and info.metadata["praisondb_kind"] == "successor"
    assert _texts(s) == ["long conversation"]


def test_cleanup_deletes_whole_sessions_past_retention(db: PraisonDB, uid: str) -> None:
    old = db.session(f"{uid}-old", user_id=uid)
    old.add_user("stale")
    old.state["k"] = 1
    old.checkpoint()
    with old.lock(timeout=1):
        pass
    fresh = db.session(f"{uid}-fresh", user_id=uid)
    fresh.add_user("recent")
    info = db.sessions.get(old.id)
    long_ago = utcnow() - timedelta(days=40)
    db.conversations.put_session(replace(info, created_at=long_ago, updated_at=long_ago))
    assert db.sessions.cleanup(older_than=timedelta(days=30), dry_run=True, user_id=uid) == 1
    assert db.sessions.exists(old.id)
    assert db.sessions.cleanup(older_than=timedelta(days=30), user_id=uid) == 1
    assert not db.sessions.exists(old.id) and db.sessions.exists(fresh.id)
    assert db.messages.list(old.id) == []
    assert db.checkpoints.list(old.id) == []
    assert db.state.items(f"session:{old.id}") == {}
    assert db.sessions.cleanup(older_than=timedelta(days=30), user_id=uid) == 0
    with pytest.raises(ValidationError):
        db.sessions.cleanup(older_than=timedelta(0))


def test_tokens_name_the_session(db: PraisonDB, uid: str, clock: FakeClock) -> None:
    secret = "s3cret-s3cret-s3cret"
    token = db.session(uid).token(secret, ttl=60)
    assert db.sessions.verify_token(token, secret) == uid
    with pytest.raises(InvalidToken):
        db.sessions.verify_token(token, "another-secret-of-length")
    with pytest.raises(InvalidToken):
        db.sessions.verify_token(
            token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], secret
        )
    short = db.session(uid).token(secret, ttl=1)
    clock.advance(1.1)
    with pytest.raises(TokenExpired):
        db.sessions.verify_token(short, secret)


def test_export_import_round_trip(db: PraisonDB, uid: str) -> None:
    import orjson

    s = db.session(uid, user_id="u", agent="a")
    s.add_user("héllo 🚀", {"k": {"nested": [1]}})
    s.add_assistant([{"type": "text", "text": "blocks"}])
    s.state.set("keep", {"v": 1})
    cp = s.checkpoint("cp")
    db.on_run_start(uid, f"{uid}-run", "héllo")
    db.on_run_end(uid, f"{uid}-run", "ok", metrics={"input_tokens": 3, "output_tokens": 4})
    db.on_trace_start(f"{uid}-trace", session_id=uid, user_id="u", agent_name="a")
    db.on_span_start(f"{uid}-span", f"{uid}-trace", "llm")
    db.on_span_end(f"{uid}-span")
    db.on_trace_end(f"{uid}-trace")
    document = s.export()
    assert document["format"] == "praisondb.session" and document["version"] == 1
    text = orjson.dumps(document)  # JSON-safe as is
    assert db.sessions.delete(uid)
    info = db.sessions.import_session(orjson.loads(text))
    again = orjson.loads(orjson.dumps(db.sessions.export(uid)))
    assert info.id == uid
    for part in ("messages", "runs", "spans", "checkpoints"):
        assert again[part] == document[part], part
    assert [(e["key"], e["value"]) for e in again["state"]] == [("keep", {"v": 1})]
    assert again["session"]["created_at"] == document["session"]["created_at"]
    assert db.checkpoints.get(cp.id).seq == cp.seq
    db.sessions.import_session(document)  # idempotent
    assert db.messages.count(uid) == 2
    with pytest.raises(ValidationError):
        db.sessions.import_session({"format": "something-else"})
