"""Topics of a conversation without a model: TF-IDF over its messages.

Each message is a document. A word's score is its count in the whole conversation times
its smoothed inverse document frequency, ``ln((1 + N) / (1 + df)) + 1``: a word that
comes back across the conversation ranks high, one that is in every message (a filler
the stop list missed) is damped but not erased. Words are lowercased runs of letters
(with inner ``'`` or ``-``) of at least three letters, minus an English stop-word list.
Ties break alphabetically, so the result is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from ..model import Content

WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
MIN_LETTERS = 3

STOP_WORDS = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "can't",
        "cannot",
        "could",
        "couldn't",
        "did",
        "didn't",
        "do",
        "does",
        "doesn't",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "either",
        "else",
        "even",
        "ever",
        "every",
        "few",
        "for",
        "from",
        "further",
        "get",
        "gets",
        "got",
        "had",
        "hadn't",
        "has",
        "hasn't",
        "have",
        "haven't",
        "having",
        "he",
        "he'd",
        "he'll",
        "he's",
        "her",
        "here",
        "here's",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "how's",
        "however",
        "i",
        "i'd",
        "i'll",
        "i'm",
        "i've",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "just",
        "let's",
        "like",
        "make",
        "many",
        "may",
        "me",
        "might",
        "more",
        "most",
        "much",
        "must",
        "mustn't",
        "my",
        "myself",
        "need",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "please",
        "same",
        "shall",
        "shan't",
        "she",
        "she'd",
        "she'll",
        "she's",
        "should",
        "shouldn't",
        "so",
        "some",
        "still",
        "such",
        "than",
        "thank",
        "thanks",
        "that",
        "that's",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "there's",
        "these",
        "they",
        "they'd",
        "they'll",
        "they're",
        "they've",
        "this",
        "those",
        "though",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "use",
        "used",
        "using",
        "very",
        "via",
        "want",
        "was",
        "wasn't",
        "we",
        "we'd",
        "we'll",
        "we're",
        "we've",
        "well",
        "were",
        "weren't",
        "what",
        "what's",
        "when",
        "when's",
        "where",
        "where's",
        "whether",
        "which",
        "while",
        "who",
        "who's",
        "whom",
        "why",
        "why's",
        "will",
        "with",
        "within",
        "without",
        "won't",
        "would",
        "wouldn't",
        "yes",
        "yet",
        "you",
        "you'd",
        "you'll",
        "you're",
        "you've",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "sure",
        "okay",
        "hello",
        "great",
        "good",
        "let",
        "tell",
        "know",
        "think",
        "really",
        "right",
        "just",
    ]
)


def text_of(content: Content) -> str:
    """The words of a message: its text, or the text of its text blocks."""
    if isinstance(content, str):
        return content
    return " ".join(
        str(block.get("text", "")) for block in content if block.get("type", "text") == "text"
    )


def words(text: str) -> list[str]:
    return [
        w
        for w in (m.group(0).lower() for m in WORD.finditer(text))
        if len(w) >= MIN_LETTERS and w not in STOP_WORDS
    ]


def topics(texts: Iterable[str], limit: int = 5) -> list[str]:
    """The ``limit`` best keywords of ``texts`` (one text per message), best first."""
    counts: Counter[str] = Counter()
    frequency: Counter[str] = Counter()
    documents = 0
    for text in texts:
        found = words(text)
        if not found:
            continue
        documents += 1
        counts.update(found)
        frequency.update(set(found))

    def score(word: str) -> float:
        return counts[word] * (math.log((1 + documents) / (1 + frequency[word])) + 1)

    ranked = sorted(counts, key=lambda w: (-score(w), w))
    return ranked[:limit]


__all__ = ["STOP_WORDS", "text_of", "topics", "words"]
