"""State writes re-sent after an ambiguous error: a write token makes them land once.

A caller that gets BackendUnavailable from a compare-and-set cannot know whether it
landed. Re-sending it with the same ``write_token`` (even after re-reading and
re-computing the value) must return the entry as stored instead of applying the change
a second time. Here the "lost reply" is the caller ignoring a reply it got, which is
exactly what the store sees when a reply is lost; tests/conformance/test_faults.py
loses real replies on the server backends.
"""

from __future__ import annotations

import pytest

from praisondb import Conflict, PraisonDB, StateEntry, ValidationError
from praisondb.ids import new_id


def add_one(db: PraisonDB, key: str, token: str) -> StateEntry:
    """One step of a caller's read-modify-CAS loop: read, add 1, compare-and-set."""
    entry = db.state.get_entry(key)
    assert entry is not None and isinstance(entry.value, int)
    return db.state.set(key, entry.value + 1, expected_version=entry.version, write_token=token)


def test_a_cas_re_sent_after_an_ambiguous_error_is_applied_once(db: PraisonDB, uid: str) -> None:
    key = f"counter-{uid}"
    db.state.set(key, 10)
    token = new_id()
    landed = db.state.set(key, 11, expected_version=1, write_token=token)  # reply "lost"
    again = db.state.set(key, 11, expected_version=1, write_token=token)  # the re-send
    assert (again.value, again.version) == (11, 2), "the re-send must not be a Conflict"
    assert (again.expires_at, again.updated_at) == (landed.expires_at, landed.updated_at)
    stored = db.state.get_entry(key)
    assert stored is not None and (stored.value, stored.version) == (11, 2)


def test_a_read_modify_write_loop_retried_by_the_caller_cannot_double_apply(
    db: PraisonDB, uid: str
) -> None:
    """The caller re-reads after the ambiguous error, sees its own write and re-computes
    from it: the same token still makes the re-send a no-op returning the stored entry."""
    key = f"counter-{uid}"
    db.state.set(key, 0)
    for step in range(1, 4):
        token = new_id()  # one token per logical change
        first = add_one(db, key, token)  # landed; the caller never sees this reply
        retried = add_one(db, key, token)  # re-reads 'step', would write step + 1
        assert (retried.value, retried.version) == (step, step + 1)
        assert (first.value, first.version) == (retried.value, retried.version)
    final = db.state.get_entry(key)
    assert final is not None and (final.value, final.version) == (3, 4)


def test_a_token_also_covers_creation_and_unconditional_writes(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"
    create = new_id()
    assert db.state.set("k", "a", scope=scope, expected_version=0, write_token=create).version == 1
    again = db.state.set("k", "a", scope=scope, expected_version=0, write_token=create)
    assert (again.value, again.version) == ("a", 1), "a re-sent create is not a Conflict"
    plain = new_id()
    assert db.state.set("k", "b", scope=scope, write_token=plain).version == 2
    assert db.state.set("k", "b", scope=scope, write_token=plain).version == 2
    entry = db.state.get_entry("k", scope=scope)
    assert entry is not None and (entry.value, entry.version) == ("b", 2)


def test_a_write_overwritten_since_is_not_taken_for_our_own(db: PraisonDB, uid: str) -> None:
    """Only the last writer's token is kept: once someone else wrote, a re-send is an
    ordinary compare-and-set again (here a Conflict), never a false "it was ours"."""
    key = f"k-{uid}"
    token = new_id()
    db.state.set(key, "ours", expected_version=0, write_token=token)
    db.state.set(key, "theirs", expected_version=1)
    with pytest.raises(Conflict):
        db.state.set(key, "ours", expected_version=0, write_token=token)
    entry = db.state.get_entry(key)
    assert entry is not None and (entry.value, entry.version) == ("theirs", 2)


def test_incr_and_delete_clear_the_token(db: PraisonDB, uid: str) -> None:
    key = f"k-{uid}"
    token = new_id()
    db.state.set(key, 1, write_token=token)
    assert db.state.incr(key) == 2
    rewritten = db.state.set(key, 1, write_token=token)  # not ours any more: written again
    assert (rewritten.value, rewritten.version) == (1, 3)
    assert db.state.delete(key, expected_version=3) is True
    recreated = db.state.set(key, 1, expected_version=0, write_token=token)
    assert recreated.version == 1


def test_copied_entries_carry_no_token(db: PraisonDB, uid: str) -> None:
    """``put_entries`` (import, copy) overwrites an entry whole, token included."""
    key = f"k-{uid}"
    token = new_id()
    written = db.state.set(key, "before", write_token=token)
    store = db.state_store
    store.put_entries([StateEntry("app", key, "copied", written.version, None, written.updated_at)])
    again = db.state.set(key, "before", write_token=token)
    assert (again.value, again.version) == ("before", written.version + 1)


@pytest.mark.parametrize("token", ["", "x" * 256, "tab\there", 7])
def test_a_bad_write_token_is_a_validation_error(db: PraisonDB, token: object) -> None:
    with pytest.raises(ValidationError, match="write_token"):
        db.state.set("k", 1, write_token=token)  # type: ignore[arg-type]
