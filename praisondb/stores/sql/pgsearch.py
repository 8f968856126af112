"""PostgreSQL memory search: ``ts_rank_cd`` weighted by each term's idf, over few rows.

``ts_rank_cd`` alone knows nothing of how common a word is: for "sushi evening" a memory
saying "evening" twice outranks the one about sushi, and every memory holding any query
word must be ranked, half the scope when one word is common. So a search runs two
statements, both on bound parameters only:

1. The terms' document frequencies, estimated on a sample of the scope (the first
   ``SAMPLE`` rows the scan meets; exact when the scope is smaller): one pass over at most
   ``SAMPLE`` tsvectors, whatever the scope's size.
2. Rank = sum over terms of idf(term) * ts_rank_cd(search_vector, term, 1) (normalised by
   the log of the memory's length), idf as in BM25. Ranked first are only the memories
   holding one of the rarest terms (idf within ``RARE_SHARE`` of the highest) or all
   terms, or, when no term stands out, all terms; the GIN index finds them. A memory
   holding only common words rarely reaches the top of a scope that has enough memories
   with the rare ones (this is where recall against exact BM25 is lost); when fewer than
   ``limit`` memories qualify, every memory holding any term is ranked instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...core.ranking import idf
from .fulltext import MEMORY_COLUMNS
from .schema import memories, memory_scopes

SAMPLE = 2000
RARE_SHARE = 0.8

_STATS = sa.text(
    "SELECT t.q, avg((s.search_vector @@ to_tsquery('simple'::regconfig, t.q))::int), count(*) "
    "FROM (SELECT search_vector FROM praisondb_memories WHERE scope = :s AND owner = :o "
    "LIMIT :sample) AS s CROSS JOIN unnest(CAST(:qs AS text[])) AS t(q) GROUP BY t.q"
)
_RANK = sa.text(
    "(SELECT sum(w.idf * ts_rank_cd(praisondb_memories.search_vector, "
    "to_tsquery('simple'::regconfig, w.q), 1)) "
    "FROM unnest(CAST(:qs AS text[]), CAST(:idfs AS float8[])) AS w(q, idf)) AS rank"
)
_MATCH = sa.text("praisondb_memories.search_vector @@ to_tsquery('simple'::regconfig, :candidates)")
_SEARCH = (
    sa.select(*MEMORY_COLUMNS, _RANK)
    .where(memories.c.scope == sa.bindparam("s"), memories.c.owner == sa.bindparam("o"), _MATCH)
    .order_by(sa.text("rank DESC"), memories.c.created_at.desc(), memories.c.id)
    .limit(sa.bindparam("limit", type_=sa.BigInteger()))
)
_SCOPE_SIZE = sa.select(memory_scopes.c.count).where(
    memory_scopes.c.scope == sa.bindparam("s"), memory_scopes.c.owner == sa.bindparam("o")
)


def _quoted(term: str) -> str:
    return "'" + term.replace("'", "''") + "'"


def search(conn: Connection, scope: str, owner: str, terms: Sequence[str], limit: int) -> list[Any]:
    """Rows of MEMORY_COLUMNS plus the rank, best first (see the module docstring)."""
    quoted = [_quoted(t) for t in terms]
    where = {"s": scope, "o": owner}
    stats = conn.execute(_STATS, {**where, "sample": SAMPLE, "qs": quoted}).all()
    if not stats:
        return []  # an empty scope
    sampled = int(stats[0][2])
    size = sampled
    if sampled >= SAMPLE:
        size = max(sampled, int(conn.execute(_SCOPE_SIZE, where).scalar() or 0))
    share = {q: float(fraction) for q, fraction, _ in stats}
    # a term the sample never met is rarer than one sample row in ``sampled``
    floor = 0.5 / sampled
    weights = [idf(size, round(max(share[q], floor) * size)) for q in quoted]
    top = max(weights)
    rare = [q for q, w in zip(quoted, weights, strict=True) if w >= RARE_SHARE * top]
    every = " & ".join(quoted)
    # the rare terms, or all terms together; when no term stands out, all together first
    narrow = " | ".join(rare) + " | (" + every + ")" if len(rare) < len(quoted) else every
    values = {**where, "qs": quoted, "idfs": weights, "limit": limit}
    rows = conn.execute(_SEARCH, {**values, "candidates": narrow}).all()
    if len(rows) < limit and len(quoted) > 1:
        rows = conn.execute(_SEARCH, {**values, "candidates": " | ".join(quoted)}).all()
    return list(rows)
