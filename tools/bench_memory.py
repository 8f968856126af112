"""Benchmark long-term memory per backend: search latency, recall against BM25, eviction.

Usage: .venv/bin/python tools/bench_memory.py [--backends sqlite,postgres,mysql,mongodb,
       redis,json,memory] [--n 100000] [--queries 200] [--adds 500] [--seed 14]

Per backend, in a throwaway database: ``--n`` memories (English-ish sentences from a
seeded generator, so every backend and every run gets the same items) are loaded into
one scope through the bulk path (``put_memories``), then:

- search latency p50/p99 over ``--queries`` queries (2-3 words taken from a random
  item, so each has matches), ``search_memories(limit=10)`` on the store;
- recall@10 of the backend's ranking against exact BM25 over the same items
  (:mod:`praisondb.core.ranking`, k1=1.2, b=0.75): the share of the reference top 10 the
  backend returns in its own top 10 (a reference tie at 10th place counts either way);
- add-with-eviction throughput: ``--adds`` adds to the full scope with ``max_items=n``,
  each evicting exactly one memory (checked).

PostgreSQL's table is ANALYZEd after the load (autovacuum does it within a minute on a
live database). Prints a markdown table and a machine line (python, cores, load average). Backends
without their own engine rank with the shared BM25, so their recall is 1.0 by design.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import mongodb_url, mysql_url, postgres_url, redis_url, sqlite_url

from praisondb.core import ranking
from praisondb.model import MemoryItem, utcnow
from praisondb.stores import open_conversation_store

OWNER = "bench-user"
LOAD_BATCH = 1000


@contextlib.contextmanager
def json_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="praisondb-bench-") as tmp:
        yield f"json://{tmp}/store"


@contextlib.contextmanager
def memory_url() -> Iterator[str]:
    yield "memory://"


URLS: dict[str, Callable[[], contextlib.AbstractContextManager[str]]] = {
    "sqlite": sqlite_url,
    "postgres": postgres_url,
    "mysql": mysql_url,
    "mongodb": mongodb_url,
    "redis": redis_url,
    "json": json_url,
    "memory": memory_url,
}
LABELS = {
    "sqlite": "SQLite (FTS5, bm25)",
    "postgres": "PostgreSQL (tsvector simple, ts_rank_cd)",
    "mysql": "MariaDB (InnoDB FULLTEXT)",
    "mongodb": "MongoDB (text index)",
    "redis": "Redis (shared BM25)",
    "json": "JSON files (shared BM25)",
    "memory": "memory:// (shared BM25)",
}

# -- the seeded generator --------------------------------------------------------------------

SUBJECTS = (
    "I", "My sister", "The user", "We", "My manager", "Our team", "My partner", "The client",
    "My daughter", "Grandpa", "Alex", "Priya", "The landlord", "My doctor", "Our neighbour",
)  # fmt: skip
VERBS = (
    "prefers", "likes", "visited", "is learning", "bought", "recommended", "hates",
    "booked", "is allergic to", "reads about", "plans to try", "forgot", "collects",
    "works with", "asked about", "cooked", "repaired", "moved to", "wrote about",
)  # fmt: skip
ADJECTIVES = (
    "green", "vintage", "spicy", "quiet", "cheap", "organic", "electric", "wooden",
    "modern", "tiny", "famous", "rainy", "ancient", "sparkling", "bitter", "smooth",
)  # fmt: skip
TOPICS = (
    "python", "javascript", "coffee", "espresso", "tea", "pasta", "sushi", "tennis",
    "football", "guitar", "piano", "lisbon", "paris", "tokyo", "berlin", "garden",
    "bicycle", "camera", "novel", "podcast", "database", "kubernetes", "yoga", "museum",
    "whiskey", "chocolate", "mountain", "beach", "train", "violin", "chess", "salmon",
)  # fmt: skip
TIMES = (
    "on weekends", "every morning", "last summer", "since 2019", "after work",
    "during holidays", "twice a month", "before meetings", "in the evening", "yesterday",
)  # fmt: skip
SYLLABLES = (
    "ka", "lo", "mi", "ren", "tor", "vel", "sha", "pri", "dun", "bex", "qua", "zor",
    "fen", "gil", "hap", "jun", "mor", "nel", "pos", "rit", "sol", "tam", "ulv", "wix",
)  # fmt: skip


class Generator:
    """English-ish memories with a long tail of rarer words (names of things), so terms
    have very different document frequencies, as real text does."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        rare = {
            "".join(self.random.choice(SYLLABLES) for _ in range(self.random.randint(2, 3)))
            for _ in range(6000)
        }
        self.rare = sorted(rare)
        # Zipf-like weights: a few rare words are common, most are rare
        self.weights = [1.0 / (rank + 1) for rank in range(len(self.rare))]

    def sentence(self) -> str:
        r = self.random
        thing = r.choices(self.rare, self.weights)[0]
        parts = [
            r.choice(SUBJECTS),
            r.choice(VERBS),
            r.choice(ADJECTIVES),
            r.choice(TOPICS),
            "called" if r.random() < 0.5 else "from",
            thing.capitalize(),
            r.choice(TIMES),
        ]
        if r.random() < 0.4:
            parts += ["and", r.choice(VERBS), r.choice(TOPICS)]
        return " ".join(parts) + "."

    def items(self, n: int, owner: str = OWNER) -> list[MemoryItem]:
        start = utcnow() - timedelta(days=30)
        return [
            MemoryItem(
                text=self.sentence(),
                scope="user",
                owner=owner,
                importance=round(self.random.random(), 3),
                relevance=round(self.random.random(), 3),
                quality=round(self.random.random(), 4),
                metadata={"i": i},
                id=f"bench-{i:07d}",
                created_at=start + timedelta(seconds=i),
            )
            for i in range(n)
        ]

    def queries(self, items: list[MemoryItem], count: int) -> list[str]:
        found = []
        for _ in range(count):
            words = ranking.query_terms(self.random.choice(items).text)
            found.append(
                " ".join(self.random.sample(words, min(len(words), self.random.randint(2, 3))))
            )
        return found


# -- the reference ranking -------------------------------------------------------------------


class Reference:
    """Exact BM25 (praisondb.core.ranking) over every item; an inverted index only skips
    the items holding no query term, which score 0 and are no match anyway."""

    def __init__(self, items: list[MemoryItem]) -> None:
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        self.ids = [item.id for item in items]
        for number, item in enumerate(items):
            tokens = ranking.tokenize(item.text)
            self.lengths.append(len(tokens))
            for term, tf in Counter(tokens).items():
                self.postings[term].append((number, tf))
        self.average = sum(self.lengths) / max(1, len(self.lengths))

    def top(self, query: str, limit: int = 10) -> list[tuple[str, float]]:
        terms = ranking.query_terms(query)
        corpus = ranking.Corpus(
            len(self.ids), self.average, {t: len(self.postings.get(t, ())) for t in terms}
        )
        weights = corpus.weights(terms)
        scores: dict[int, float] = defaultdict(float)
        for term in terms:
            for number, tf in self.postings.get(term, ()):
                scores[number] += ranking.term_score(
                    tf, self.lengths[number], self.average, weights[term]
                )
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        cut = best[limit - 1][1] if len(best) >= limit else -math.inf
        # everything tied with the 10th is an equally right answer
        return [(self.ids[n], s) for n, s in best if s >= cut - 1e-9]


def recall(found: list[str], reference: list[tuple[str, float]], limit: int = 10) -> float:
    if not reference:
        return 1.0
    wanted = {memory_id for memory_id, _ in reference}
    return min(1.0, len(wanted.intersection(found[:limit])) / min(limit, len(reference)))


# -- one backend -------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def measure(
    url: str, items: list[MemoryItem], queries: list[str], reference: Reference, adds: int
) -> dict[str, float]:
    store: Any = open_conversation_store(url, auto_migrate=True)
    try:
        started = time.perf_counter()
        for start in range(0, len(items), LOAD_BATCH):
            store.put_memories(items[start : start + LOAD_BATCH])
        load = time.perf_counter() - started
        assert store.count_memories("user", OWNER) == len(items)
        if url.startswith("postgresql"):
            analyze(url)
        for query in queries[:5]:  # warm caches
            store.search_memories("user", OWNER, query, limit=10)
        latencies, recalls = [], []
        for query in queries:
            began = time.perf_counter()
            hits = store.search_memories("user", OWNER, query, limit=10)
            latencies.append((time.perf_counter() - began) * 1000)
            recalls.append(recall([item.id for item, _ in hits], reference.top(query)))
        extra = Generator(99).items(adds, OWNER)
        for number, item in enumerate(extra):
            item.id = f"bench-add-{number:07d}"
            item.created_at = utcnow()
        began = time.perf_counter()
        for item in extra:
            evicted = store.add_memory(item, max_items=len(items))
            assert len(evicted) == 1, evicted
        add_rate = adds / (time.perf_counter() - began)
        assert store.count_memories("user", OWNER) == len(items)
        return {
            "load_per_s": len(items) / load,
            "p50_ms": statistics.median(latencies),
            "p99_ms": percentile(latencies, 0.99),
            "recall": statistics.fmean(recalls),
            "add_per_s": add_rate,
        }
    finally:
        with contextlib.suppress(Exception):
            store.delete_memories("user", OWNER)
        store.close()


def analyze(url: str) -> None:
    """What autovacuum does within a minute of a bulk load: without statistics the
    planner walks the scope's btree instead of the GIN index (about 3x slower)."""
    import sqlalchemy as sa

    from praisondb.stores.sql.engine import driver_url
    from praisondb.urls import parse_url

    engine = sa.create_engine(driver_url(parse_url(url)))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE praisondb_memories"))
    finally:
        engine.dispose()


def print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres,mysql,mongodb,redis,json,memory")
    parser.add_argument("--n", type=int, default=100_000, help="memories in the scope")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--adds", type=int, default=500, help="adds with eviction")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(names) - set(URLS))
    if unknown:
        parser.error(f"unknown backends {unknown}; known: {sorted(URLS)}")
    generator = Generator(args.seed)
    items = generator.items(args.n)
    queries = generator.queries(items, args.queries)
    reference = Reference(items)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load}")
    print(f"n={args.n} queries={args.queries} adds={args.adds} seed={args.seed}\n")
    rows = []
    for name in names:
        began = time.perf_counter()
        with URLS[name]() as url:
            r = measure(url, items, queries, reference, args.adds)
        rows.append(
            [
                LABELS[name],
                f"{args.n:,}",
                f"{r['load_per_s']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['recall']:.3f}",
                f"{r['add_per_s']:,.0f}",
            ]
        )
        took = time.perf_counter() - began
        print(f"  {name}: {took:.0f} s: {' | '.join(rows[-1])}", file=sys.stderr, flush=True)
    print_table(
        [
            "backend",
            "memories",
            "bulk load /s",
            "search p50 ms",
            "search p99 ms",
            "recall@10 vs BM25",
            "add+evict /s",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
