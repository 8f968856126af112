"""Long-term memories on disk (JSON files) and the shared ranking: what the conformance
suite cannot see. A torn last line, compaction, and BM25's own arithmetic."""

from __future__ import annotations

import math
import random
from pathlib import Path

from praisondb.core import ranking
from praisondb.model import MemoryItem
from praisondb.stores._memories import scope_name
from praisondb.stores.jsonfiles.files import safe_name
from praisondb.stores.jsonfiles.memories import ITEMS
from praisondb.stores.jsonfiles.store import JsonFileStore
from praisondb.urls import parse_url


def _store(tmp_path: Path) -> JsonFileStore:
    return JsonFileStore(parse_url(f"json://{tmp_path / 'store'}"))


def _items_file(tmp_path: Path, owner: str) -> Path:
    return tmp_path / "store" / "memories" / safe_name(scope_name("user", owner)) / ITEMS


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_add(tmp_path: Path) -> None:
    store = _store(tmp_path)
    kept = MemoryItem("kept", "user", "u", quality=0.5)
    store.add_memory(kept, max_items=10)
    path = _items_file(tmp_path, "u")
    with open(path, "ab") as handle:  # a writer killed mid-line
        handle.write(b'{"put": [{"text": "half')
    fresh = _store(tmp_path)  # another process: replays the file
    assert [m.id for m in fresh.list_memories("user", "u").items] == [kept.id]
    later = MemoryItem("later", "user", "u", quality=0.6)
    assert fresh.add_memory(later, max_items=10) == []
    assert path.read_bytes().count(b"\n") == 2 and b"half" not in path.read_bytes()
    assert {m.id for m in _store(tmp_path).list_memories("user", "u").items} == {
        kept.id,
        later.id,
    }


def test_evictions_compact_the_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for i in range(300):
        store.add_memory(MemoryItem(f"m{i}", "user", "c", quality=i / 1000), max_items=5)
    lines = _items_file(tmp_path, "c").read_bytes().count(b"\n")
    assert lines < 256  # rewritten once it held 256 lines for 5 memories
    survivors = sorted(m.quality for m in _store(tmp_path).list_memories("user", "c").items)
    assert survivors == [i / 1000 for i in range(295, 300)]


def test_a_stale_process_cache_sees_other_writers(tmp_path: Path) -> None:
    one, two = _store(tmp_path), _store(tmp_path)
    first = MemoryItem("first", "user", "x", quality=0.9)
    one.add_memory(first, max_items=1)
    assert one.count_memories("user", "x") == 1
    better = MemoryItem("better", "user", "x", quality=0.95)
    assert two.add_memory(better, max_items=1) == [first.id]
    assert [m.id for m in one.list_memories("user", "x").items] == [better.id]
    assert one.delete_memories("user", "x") == 1
    assert two.count_memories("user", "x") == 0


def test_tokens_are_lowercase_words_without_stopwords() -> None:
    assert ranking.tokenize("The Café's menu: ÉCLAIRS, and 2 coffees!") == [
        "café",
        "s",
        "menu",
        "éclairs",
        "2",
        "coffees",
    ]
    assert ranking.query_terms("tea tea TEA the") == ["tea"]


def test_bm25_matches_the_formula() -> None:
    docs = [("a", "green tea"), ("b", "green tea green tea with milk"), ("c", "coffee")]
    ranked = dict(ranking.rank("green tea", docs, 10))
    assert set(ranked) == {"a", "b"}
    average = (2 + 5 + 1) / 3  # "with" is a stopword: b has 5 tokens
    weight = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))

    def term(tf: int, length: int) -> float:
        return weight * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average))

    assert math.isclose(ranked["a"], 2 * term(1, 2))
    assert math.isclose(ranked["b"], 2 * term(2, 5))
    assert ranking.rank("the and", docs, 10) == []
    assert ranking.rank("green", docs, 0) == []


def test_the_inverted_index_scores_what_brute_force_scores() -> None:
    words = ["tea", "coffee", "green", "milk", "sugar", "lisbon", "python", "rain", "sun", "train"]
    rng = random.Random(14)
    texts = {f"d{i}": " ".join(rng.choices(words, k=rng.randint(1, 9))) for i in range(200)}
    index = ranking.InvertedIndex()
    for key, text in texts.items():
        index.add(key, text)
    for key in list(texts)[::7]:  # removals keep the statistics right
        index.remove(key, texts.pop(key))
    index.add("d1", texts["d1"])  # re-adding a key replaces it
    for query in ("green tea", "python rain sun", "milk", "absent words"):
        expected = dict(ranking.rank(query, texts.items(), len(texts)))
        found = index.search(query)
        assert found.keys() == expected.keys()
        assert all(math.isclose(found[k], expected[k]) for k in expected)
