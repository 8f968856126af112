"""Long-term memory (issue #14 item 1), on every backend and face.

Two levels: the store protocol (``MemoriesStore``: what each backend implements) and the
public API (``db.memory(...)``, ``session.memory``, cleanup). Store-level tests reach the
store through ``db.conversations`` (on the async face, through the bridge).
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import timedelta
from typing import Any

import pytest

from praisondb import Conflict, NotFound, PraisonDB, ValidationError
from praisondb.model import MemoryItem, utcnow
from tests.backends import TestBackend
from tests.conformance.conftest import ROOT, spawn_worker

MEMORY_WORKER = ROOT / "tests" / "conformance" / "_memory_worker.py"


def _item(owner: str, text: str, quality: float, seconds: int = 0, **fields: Any) -> MemoryItem:
    base = utcnow().replace(microsecond=123456) - timedelta(days=1)
    return MemoryItem(
        text=text,
        scope=fields.pop("scope", "user"),
        owner=owner,
        quality=quality,
        created_at=base + timedelta(seconds=seconds),
        **fields,
    )


# -- the store protocol -------------------------------------------------------------------


def test_store_round_trips_every_field(db: PraisonDB, uid: str) -> None:
    store: Any = db.conversations
    item = _item(
        uid,
        "I prefer Python over JavaScript 🐍 ünïcödé",
        0.875,
        importance=0.9,
        relevance=0.25,
        metadata={"source": "chat", "nested": {"a.b": [1, 2.5, None, True], "$k": "v"}},
        embedding=[0.5, -0.25, 1.0, 0.0],
    )
    assert store.add_memory(item, max_items=10) == []
    got = store.get_memory(item.id)
    assert got == item
    assert got.score is None
    agent = _item(uid, "agent fact", 0.5, scope="agent")
    assert store.add_memory(agent) == []
    assert store.get_memory(agent.id).scope == "agent"


def test_store_add_is_idempotent_and_conflicts_on_other_content(db: PraisonDB, uid: str) -> None:
    store: Any = db.conversations
    item = _item(uid, "the same fact", 0.5)
    assert store.add_memory(item, max_items=5) == []
    assert store.add_memory(item, max_items=5) == []
    assert store.count_memories("user", uid) == 1
    other = _item(uid, "another text", 0.5)
    other.id = item.id
    with pytest.raises(Conflict):
        store.add_memory(other, max_items=5)
    assert store.get_memory(item.id).text == "the same fact"


def test_store_get_and_delete_missing(db: PraisonDB, uid: str) -> None:
    store: Any = db.conversations
    with pytest.raises(NotFound):
        store.get_memory(uid)
    assert store.delete_memory(uid) is False


def test_store_evicts_lowest_quality_then_oldest_then_id(db: PraisonDB, uid: str) -> None:
    store: Any = db.conversations
    items = [
        _item(uid, "a", 0.5, 0),
        _item(uid, "b", 0.2, 1),
        _item(uid, "c", 0.9, 2),
        _item(uid, "d", 0.2, 3),
        _item(uid, "e", 0.7, 4),
    ]
    evicted: list[str] = []
    for item in items:
        evicted += store.add_memory(item, max_items=3)
    assert evicted == [items[1].id, items[3].id]
    kept = {m.id for m in store.list_memories("user", uid).items}
    assert kept == {items[0].id, items[2].id, items[4].id}
    low = _item(uid, "f", 0.1, 5)
    assert store.add_memory(low, max_items=3) == [low.id]  # the newcomer ranks lowest
    assert store.count_memories("user", uid) == 3
    # equal quality and time: the smaller id goes first
    twin_a = _item(uid, "g", 0.0, 6, id=f"{uid}-a")
    twin_b = _item(uid, "h", 0.0, 6, id=f"{uid}-b")
    store.put_memories([twin_b])
    assert store.add_memory(twin_a, max_items=4) == [twin_a.id]


def test_store_lists_newest_first_with_paging_and_counts(db: PraisonDB, uid: str) -> None:
    store: Any = db.conversations
    items = [_item(uid, f"fact {i}", 0.5, i) for i in range(7)]
    assert store.put_memories(items) == 7
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_memories("user", uid, limit=3, cursor=cursor)
        assert len(page.items) <= 3
        seen += [m.id for m in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [m.id for m in reversed(items)]
    assert store.count_memories("user", uid) == 7
    assert store.count_memories("agent", uid) == 0
    everyone = {m.id for m in store.list_memories(None, None, limit=None).items}
    assert {m.id for m in items} <= everyone
    assert store.count_memories() >= 7
    assert store.delete_memory(items[0].id) is True
    assert store.count_memories("user", uid) == 6
    assert store.delete_memories("user", uid) == 6
    assert store.count_memories("user", uid) == 0
    assert store.list_memories("user", uid).items == []


def test_store_put_memories_overwrites_exactly_without_eviction(db: PraisonDB, uid: str) -> None:
    store: Any = db.conversations
    items = [_item(uid, f"kept {i}", 0.1 * i, i, embedding=[float(i), 1.0]) for i in range(4)]
    assert store.put_memories(items) == 4
    changed = _item(uid, "rewritten", 0.95, 9, id=items[0].id, metadata={"v": 2})
    assert store.put_memories([changed]) == 1
    assert store.get_memory(items[0].id) == changed
    assert store.count_memories("user", uid) == 4
    assert store.put_memories([]) == 0


def test_store_search_ranks_best_first_with_raw_ranks(db: PraisonDB, uid: str) -> None:
    store: Any = db.conversations
    texts = [
        "The weather in Lisbon was sunny yesterday",
        "I prefer Python over JavaScript",
        "Python programming is my favourite hobby",
        "My cat is called Whiskers",
    ]
    store.put_memories([_item(uid, t, 0.5, i) for i, t in enumerate(texts)])
    store.put_memories([_item(uid + "x", "Python Python Python programming", 0.5)])
    hits = store.search_memories("user", uid, "python programming", limit=10)
    assert [h.text for h, _ in hits][:1] == [texts[2]]
    assert {h.text for h, _ in hits} == {texts[1], texts[2]}
    ranks = [r for _, r in hits]
    assert all(isinstance(r, float) and math.isfinite(r) for r in ranks)
    assert ranks == sorted(ranks, reverse=True)
    assert all(h.owner == uid for h, _ in hits)
    assert store.search_memories("user", uid, "whiskers", limit=1)[0][0].text == texts[3]
    assert store.search_memories("user", uid, "submarine", limit=5) == []
    assert store.search_memories("agent", uid, "python", limit=5) == []
    assert len(store.search_memories("user", uid, "python programming", limit=1)) == 1


# -- the public API ------------------------------------------------------------------------


def test_add_round_trips_and_scores_by_the_default_formula(db: PraisonDB, uid: str) -> None:
    mem = db.memory()
    item = mem.add(
        "I prefer Python over JavaScript",
        user_id=uid,
        importance=0.9,
        relevance=0.8,
        metadata={"source": "chat"},
    )
    assert item is not None
    assert (item.scope, item.owner, item.text) == ("user", uid, "I prefer Python over JavaScript")
    assert item.quality == pytest.approx(0.8 * 0.4 + 1.0 * 0.3 + 0.9 * 0.3)
    got = mem.get(item.id)
    assert got == item
    assert mem.count(user_id=uid) == 1
    assert [m.id for m in mem.list(user_id=uid).items] == [item.id]
    own = mem.add("fixed id", agent=uid, id=f"{uid}-own")
    assert own is not None and own.id == f"{uid}-own" and own.scope == "agent"
    app = mem.add("app-wide", app=uid)
    assert app is not None and (app.scope, app.owner) == ("app", uid)


def test_under_the_threshold_is_not_stored(
    db: PraisonDB, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    mem = db.memory(quality_threshold=0.7)
    with caplog.at_level(logging.DEBUG, logger="praisondb.memory"):
        assert mem.add("trivia", user_id=uid, importance=0.1, relevance=0.1) is None
    assert any("threshold" in r.getMessage() for r in caplog.records)
    assert mem.count(user_id=uid) == 0
    kept = mem.add("important", user_id=uid, importance=1.0, relevance=1.0)
    assert kept is not None and mem.count(user_id=uid) == 1


def test_a_custom_scorer_sets_quality(db: PraisonDB, uid: str) -> None:
    mem = db.memory(quality_threshold=0.5)
    seen: list[MemoryItem] = []

    def scorer(item: MemoryItem) -> float:
        seen.append(item)
        return 0.9 if "keep" in item.text else 0.1

    mem.set_quality_scorer(scorer)
    kept = mem.add("keep this", user_id=uid)
    assert kept is not None and kept.quality == pytest.approx(0.9)
    assert mem.add("drop this", user_id=uid) is None
    assert [s.text for s in seen] == ["keep this", "drop this"]
    assert seen[0].owner == uid and seen[0].scope == "user"


@pytest.mark.parametrize("bad", [1.5, -0.1, math.nan, "0.5", None, True])
def test_a_scorer_returning_outside_0_1_is_a_clear_error(
    db: PraisonDB, uid: str, bad: object
) -> None:
    mem = db.memory()
    mem.set_quality_scorer(lambda item: bad)
    with pytest.raises(ValidationError, match=r"0\.\.1"):
        mem.add("anything", user_id=uid)
    assert mem.count(user_id=uid) == 0


def test_set_quality_scorer_rejects_a_non_callable(db: PraisonDB) -> None:
    with pytest.raises(ValidationError):
        db.memory().set_quality_scorer("not callable")  # type: ignore[arg-type]


def test_eviction_keeps_the_best_per_scope(db: PraisonDB, uid: str) -> None:
    mem = db.memory(max_memories=3)
    mem.set_quality_scorer(lambda item: item.metadata["q"])
    for q in (0.5, 0.2, 0.9, 0.3, 0.7):
        mem.add(f"q={q}", user_id=uid, metadata={"q": q})
        mem.add(f"q={q}", user_id=uid + "-other", metadata={"q": q})
    assert sorted(m.quality for m in mem.list(user_id=uid).items) == [0.5, 0.7, 0.9]
    assert mem.count(user_id=uid + "-other") == 3
    assert mem.add("too weak", user_id=uid, metadata={"q": 0.1}) is None
    assert mem.count(user_id=uid) == 3


def _expected(qualities: list[float], keep: int) -> list[float]:
    return sorted(qualities, reverse=True)[:keep]


def test_eviction_with_concurrent_threads_matches_a_serial_run(db: PraisonDB, uid: str) -> None:
    mem = db.memory(max_memories=10)
    mem.set_quality_scorer(lambda item: item.metadata["q"])
    qualities = [round((i + 1) / 101, 6) for i in range(60)]
    batches = [qualities[t::4] for t in range(4)]
    errors: list[BaseException] = []

    def writer(batch: list[float]) -> None:
        try:
            for q in batch:
                mem.add(f"m-{q}", user_id=uid, metadata={"q": q})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert mem.count(user_id=uid) == 10
    survivors = sorted((m.quality for m in mem.list(user_id=uid, limit=100).items), reverse=True)
    assert survivors == _expected(qualities, 10)


def test_eviction_with_concurrent_processes_matches_a_serial_run(
    db: PraisonDB, multi_process: TestBackend, backend_url: str, face: str, uid: str
) -> None:
    qualities = [round((i + 1) / 101, 6) for i in range(45)]
    workers = [
        spawn_worker(
            backend_url, uid, "8", *map(str, qualities[w::3]), face=face, script=MEMORY_WORKER
        )
        for w in range(3)
    ]
    for proc in workers:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert out.split() == ["ready", "done"]
    mem = db.memory(max_memories=8)
    assert mem.count(user_id=uid) == 8
    survivors = sorted((m.quality for m in mem.list(user_id=uid, limit=100).items), reverse=True)
    assert survivors == _expected(qualities, 8)


def test_search_ranks_the_best_first_with_scores(db: PraisonDB, uid: str) -> None:
    mem = db.memory()
    mem.add("The weather in Lisbon was sunny", user_id=uid)
    best = mem.add("My favourite programming language is Python", user_id=uid)
    mem.add("I had pasta for lunch", user_id=uid)
    mem.add("Python programming language for everything", user_id=uid + "-other")
    hits = mem.search("favourite programming language", user_id=uid, limit=5)
    assert best is not None and hits and hits[0].id == best.id
    scores = [h.score for h in hits]
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert all(h.owner == uid for h in hits)
    assert mem.search("submarine", user_id=uid) == []
    assert len(mem.search("the lisbon pasta python", user_id=uid, limit=2)) == 2
    assert mem.get(best.id).score is None  # scores live on search results only


def test_scopes_are_isolated(db: PraisonDB, uid: str) -> None:
    mem = db.memory()
    for kw in ({"user_id": uid}, {"agent": uid}, {"app": uid}, {"user_id": uid + "-2"}):
        mem.add(f"fact about zebras for {sorted(kw.items())}", **kw)
    for kw in ({"user_id": uid}, {"agent": uid}, {"app": uid}, {"user_id": uid + "-2"}):
        assert mem.count(**kw) == 1
        [hit] = mem.search("zebras", **kw)
        assert str(sorted(kw.items())) in hit.text
        assert [m.text for m in mem.list(**kw).items] == [hit.text]


def test_delete_count_and_list_paging(db: PraisonDB, uid: str) -> None:
    mem = db.memory()
    added = [mem.add(f"note {i}", user_id=uid) for i in range(5)]
    ids = [m.id for m in added if m is not None]
    first = mem.list(user_id=uid, limit=2)
    second = mem.list(user_id=uid, limit=2, cursor=first.next_cursor)
    third = mem.list(user_id=uid, limit=2, cursor=second.next_cursor)
    listed = [m.id for m in first.items + second.items + third.items]
    assert listed == list(reversed(ids)) and third.next_cursor is None
    assert mem.delete(ids[0]) is True
    assert mem.delete(ids[0]) is False
    assert mem.count(user_id=uid) == 4
    with pytest.raises(NotFound):
        mem.get(ids[0])


VOCABULARY = {
    "python": 0, "programming": 0, "language": 0,
    "coffee": 1, "espresso": 1, "latte": 1,
    "rain": 2, "weather": 2, "umbrella": 2,
}  # fmt: skip


def toy_embed(text: str) -> list[float]:
    """A deterministic embedding: counts of three topics (no model)."""
    vector = [0.0, 0.0, 0.0, 0.01]
    for word in text.lower().split():
        topic = VOCABULARY.get(word.strip(".,!?"))
        if topic is not None:
            vector[topic] += 1.0
    return vector


def test_embed_ranks_by_cosine(db: PraisonDB, uid: str) -> None:
    mem = db.memory(embed=toy_embed)
    coffee = mem.add("I drink a latte every morning", user_id=uid)
    mem.add("Bring an umbrella when the weather is bad", user_id=uid)
    mem.add("Python is my programming language", user_id=uid)
    assert coffee is not None and coffee.embedding == toy_embed(coffee.text)
    assert mem.get(coffee.id).embedding == toy_embed(coffee.text)
    hits = mem.search("espresso", user_id=uid, limit=3)  # no shared word: vectors only
    assert hits[0].id == coffee.id
    assert all(h.score is not None and 0.0 <= h.score <= 1.0 for h in hits)
    assert hits[0].score > hits[-1].score  # type: ignore[operator]


def test_embed_must_return_numbers(db: PraisonDB, uid: str) -> None:
    mem = db.memory(embed=lambda text: ["x"])
    with pytest.raises(ValidationError):
        mem.add("anything", user_id=uid)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.add("no scope"),
        lambda m: m.add("two scopes", user_id="a", agent="b"),
        lambda m: m.add("", user_id="a"),
        lambda m: m.add("x", user_id="a", importance=1.5),
        lambda m: m.add("x", user_id="a", relevance=-1),
        lambda m: m.add("x", user_id="a", metadata=[1]),
        lambda m: m.search("q"),
        lambda m: m.search("q", user_id="a", limit=0),
        lambda m: m.search(5, user_id="a"),
        lambda m: m.list(user_id="a", limit=-1),
        lambda m: m.count(user_id="a", agent="b"),
    ],
)
def test_arguments_are_validated(db: PraisonDB, call: Any) -> None:
    with pytest.raises(ValidationError):
        call(db.memory())


@pytest.mark.parametrize(
    "options",
    [
        {"quality_threshold": 1.5},
        {"quality_threshold": "high"},
        {"max_memories": 0},
        {"max_memories": 2.5},
        {"embed": "model"},
        {"recency_half_life": 30},
        {"recency_half_life": timedelta(0)},
    ],
)
def test_memory_options_are_validated(db: PraisonDB, options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        db.memory(**options)


def test_a_new_session_remembers_what_an_earlier_one_learned(db: PraisonDB, uid: str) -> None:
    first = db.session(f"{uid}-1", user_id=uid, memory=True)
    first.add_user("I am vegetarian")
    first.memory.add("The user is vegetarian", importance=0.9)
    later = db.session(f"{uid}-2", user_id=uid, memory=True)
    assert [m.text for m in later.memory.list().items] == ["The user is vegetarian"]
    context = later.context()
    assert context and context[0].role == "system"
    assert "The user is vegetarian" in str(context[0].content)
    plain = db.session(f"{uid}-3", user_id=uid)
    assert all("vegetarian" not in str(m.content) for m in plain.context())


def test_cleanup_removes_a_users_memories(db: PraisonDB, uid: str) -> None:
    mem = db.memory()
    mem.add("forget me", user_id=uid)
    mem.add("keep me", user_id=uid + "-other")
    db.sessions.create(f"{uid}-s", user_id=uid)
    db.sessions.cleanup(timedelta(microseconds=1), user_id=uid, memories=True)
    assert mem.count(user_id=uid) == 0
    assert mem.count(user_id=uid + "-other") == 1
    assert mem.clear(user_id=uid + "-other") == 1
    assert mem.count(user_id=uid + "-other") == 0
