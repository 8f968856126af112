"""The one shared text ranking: a tokenizer and BM25 (k1=1.2, b=0.75).

Stores without a full-text engine of their own (``memory://``, JSON files, Redis) rank
memories with it, and the memory benchmark uses it as the brute-force reference the
backends' engines (SQLite FTS5, PostgreSQL tsvector, MariaDB FULLTEXT, MongoDB text
index) are compared against.

Tokens are lowercase runs of unicode letters and digits (``\\w`` without ``_``), minus a
small English stopword list; no stemming (a query for "languages" does not match
"language"), so every store gets the same tokens without a stemming library.

BM25 of a document ``d`` for query terms ``q``::

    sum over t in q:  idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

with ``N`` the documents ranked over (one scope's memories), ``df(t)`` how many of them
hold ``t`` and ``avgdl`` their average length in tokens. The idf never goes negative,
so a document holding a query term always scores above one that holds none; documents
holding no query term are not matches.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

K1 = 1.2
B = 0.75

_WORD = re.compile(r"[^\W_]+")

_STOPWORD_TEXT = """a about after all also am an and any are as at be been before being but by can
    could did do does doing for from had has have having he her here hers him his how i
    if in into is it its itself just me more most my no nor not of off on once only or
    other our ours out over own same she should so some such than that the their theirs
    them then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
"""Words too common to rank by (a short list: the engines' own lists differ anyway)."""


def tokenize(text: str) -> list[str]:
    """The ranked tokens of ``text``, in order, repeats kept (term frequency counts them)."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def query_terms(query: str) -> list[str]:
    """The distinct tokens of ``query``, in first-seen order."""
    return list(dict.fromkeys(tokenize(query)))


def idf(documents: int, frequency: int) -> float:
    """BM25's inverse document frequency, never negative (see the module docstring)."""
    return math.log(1.0 + (documents - frequency + 0.5) / (frequency + 0.5))


def term_score(tf: int, length: int, average_length: float, weight: float) -> float:
    """One term's contribution for a document of ``length`` tokens holding it ``tf`` times;
    ``weight`` is the term's :func:`idf`."""
    if tf <= 0:
        return 0.0
    norm = 1.0 - B + B * (length / average_length if average_length > 0 else 1.0)
    return weight * tf * (K1 + 1.0) / (tf + K1 * norm)


@dataclass(frozen=True, slots=True)
class Corpus:
    """What BM25 needs to know about the documents ranked over."""

    documents: int
    average_length: float
    frequencies: Mapping[str, int]
    """Document frequency of each query term (terms absent here occur nowhere)."""

    def weights(self, terms: Iterable[str]) -> dict[str, float]:
        return {t: idf(self.documents, self.frequencies.get(t, 0)) for t in terms}


def score(terms: Sequence[str], counts: Mapping[str, int], length: int, corpus: Corpus) -> float:
    """BM25 of one document (its token ``counts`` and ``length``) for ``terms``."""
    weights = corpus.weights(terms)
    return sum(
        term_score(counts.get(t, 0), length, corpus.average_length, weights[t]) for t in terms
    )


def rank(query: str, documents: Iterable[tuple[T, str]], limit: int) -> list[tuple[T, float]]:
    """Brute force: the best ``limit`` of ``documents`` (``(key, text)`` pairs) for
    ``query`` with their BM25, best first; ties keep the input order. No match: []."""
    terms = query_terms(query)
    if not terms or limit <= 0:
        return []
    keyed: list[tuple[T, Counter[str], int]] = []
    total = 0
    frequencies: Counter[str] = Counter()
    wanted = set(terms)
    for key, text in documents:
        tokens = tokenize(text)
        counts = Counter(tokens)
        keyed.append((key, counts, len(tokens)))
        total += len(tokens)
        frequencies.update(wanted.intersection(counts))
    if not keyed or not frequencies:
        return []
    corpus = Corpus(len(keyed), total / len(keyed), frequencies)
    scored = [
        (key, score(terms, counts, length, corpus))
        for key, counts, length in keyed
        if not wanted.isdisjoint(counts)
    ]
    scored.sort(key=lambda pair: -pair[1])  # stable: ties keep the input order
    return scored[:limit]


class InvertedIndex:
    """BM25 postings kept in this process: term -> {key: tf}, and each key's length.

    What ``memory://`` and the JSON files' cache search with, so a query reads only its
    terms' postings instead of tokenizing the whole scope. Scores equal :func:`rank`'s
    over the same documents. Not thread-safe: the owner holds its lock around calls.
    """

    def __init__(self) -> None:
        self.postings: dict[str, dict[str, int]] = {}
        self.lengths: dict[str, int] = {}
        self.total = 0

    def add(self, key: str, text: str) -> None:
        if key in self.lengths:
            self.remove(key, text)
        tokens = tokenize(text)
        for term, tf in Counter(tokens).items():
            self.postings.setdefault(term, {})[key] = tf
        self.lengths[key] = len(tokens)
        self.total += len(tokens)

    def remove(self, key: str, text: str) -> None:
        """Forget ``key``; ``text`` is what it was added with."""
        length = self.lengths.pop(key, None)
        if length is None:
            return
        self.total -= length
        for term in set(tokenize(text)):
            posting = self.postings.get(term)
            if posting is not None:
                posting.pop(key, None)
                if not posting:
                    del self.postings[term]

    def search(self, query: str) -> dict[str, float]:
        """Every key holding a term of ``query``, with its BM25."""
        documents = len(self.lengths)
        if not documents:
            return {}
        average = self.total / documents
        scores: dict[str, float] = {}
        for term in query_terms(query):
            posting = self.postings.get(term)
            if not posting:
                continue
            weight = idf(documents, len(posting))
            for key, tf in posting.items():
                gained = term_score(tf, self.lengths[key], average, weight)
                scores[key] = scores.get(key, 0.0) + gained
        return scores


__all__ = [
    "K1",
    "STOPWORDS",
    "B",
    "Corpus",
    "InvertedIndex",
    "idf",
    "query_terms",
    "rank",
    "score",
    "term_score",
    "tokenize",
]
