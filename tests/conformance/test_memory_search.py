"""Memory search against hostile text and index drift, on every backend and face.

The stores with a full-text engine (SQLite FTS5, PostgreSQL tsvector, MySQL/MariaDB
FULLTEXT, MongoDB text index) get only the shared tokenizer's terms, quoted where the
engine has a syntax: query text in any engine's syntax is just words, never an error.
Their indexes follow every write (triggers, generated column, InnoDB, MongoDB).
"""

from __future__ import annotations

from typing import Any

import pytest

from praisondb import PraisonDB
from praisondb.core.ranking import query_terms
from praisondb.model import MemoryItem
from tests.backends import TestBackend

HOSTILE = [
    '"',
    "'",
    "*",
    "python*",
    "NEAR(python snake)",
    "python OR",
    "AND",
    "NOT python",
    "-python",
    "python:*",
    "python & | ! <->",
    "'); DROP TABLE praisondb_memories; --",
    "\\",
    "\x00python",
    '"python" "snake',
    "^python",
    "text:python",
    "{python}",
    "(python",
    "python)",
    "+python -snake",
    '{"$gt": ""}',
    "$where",
    "🐍 python",
    "%_python%",
    "python " * 500,
    "x" * 5000,
]


def _store(db: PraisonDB) -> Any:
    return db.conversations


def _add(store: Any, owner: str, text: str, **fields: Any) -> MemoryItem:
    item = MemoryItem(text=text, scope="user", owner=owner, quality=0.5, **fields)
    assert store.add_memory(item) == []
    return item


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_engine_syntax_in_a_query_is_only_words(db: PraisonDB, uid: str, query: str) -> None:
    store = _store(db)
    python = _add(store, uid, "Python is my favourite language")
    _add(store, uid, "The snake in the garden is green")
    _add(store, uid + "-other", "python python python")
    hits = store.search_memories("user", uid, query, limit=10)
    assert all(item.owner == uid for item, _ in hits)
    if "python" in query_terms(query):
        assert python.id in [item.id for item, _ in hits]
    assert store.count_memories("user", uid) == 2


def test_a_query_of_stopwords_or_punctuation_finds_nothing(db: PraisonDB, uid: str) -> None:
    store = _store(db)
    _add(store, uid, "the and of is it")
    for query in ("the and of", "?!.,;", "", "   "):
        assert store.search_memories("user", uid, query, limit=5) == []


def test_short_words(db: PraisonDB, backend: TestBackend, uid: str) -> None:
    """Two-letter words: found everywhere except MySQL/MariaDB, whose InnoDB FULLTEXT
    skips words under innodb_ft_min_token_size (3 by default; README "Memory")."""
    store = _store(db)
    item = _add(store, uid, "AI tools in the UK go far")
    short = store.search_memories("user", uid, "AI UK", limit=5)
    if backend.name == "mysql":
        assert short == []
    else:
        assert [found.id for found, _ in short] == [item.id]
    # one word long enough is enough, on every backend
    mixed = store.search_memories("user", uid, "AI tools", limit=5)
    assert [found.id for found, _ in mixed] == [item.id]


def test_the_index_follows_overwrites_deletes_and_evictions(db: PraisonDB, uid: str) -> None:
    store = _store(db)
    first = _add(store, uid, "alpha zebra")

    def found(query: str) -> list[str]:
        return [item.id for item, _ in store.search_memories("user", uid, query, limit=10)]

    assert found("zebra") == [first.id]
    rewritten = MemoryItem(text="alpha giraffe", scope="user", owner=uid, quality=0.1, id=first.id)
    store.put_memories([rewritten])
    assert found("zebra") == []
    assert found("giraffe") == [first.id]
    better = MemoryItem(text="beta giraffe", scope="user", owner=uid, quality=0.9)
    assert store.add_memory(better, max_items=1) == [first.id]
    assert found("giraffe") == [better.id]
    assert found("alpha") == []
    assert store.delete_memory(better.id) is True
    assert found("giraffe") == []


def test_case_and_accents_of_a_query(db: PraisonDB, uid: str) -> None:
    store = _store(db)
    item = _add(store, uid, "Visited the Café in LISBON")
    for query in ("lisbon", "LISBON", "Lisbon", "café", "CAFÉ"):
        assert [found.id for found, _ in store.search_memories("user", uid, query, limit=5)] == [
            item.id
        ], query
