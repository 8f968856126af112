"""Memory search with each SQL engine's own full-text index (made by migration 0004).

The query text never reaches SQL as SQL, nor as the engine's query syntax: it is cut
into the shared ranking's terms (:func:`praisondb.core.ranking.query_terms`: lowercase
runs of letters and digits, stopwords dropped), and only those terms, quoted where the
engine has a syntax, are bound as one parameter. Any term may match (OR): a memory
holding some of the words is a candidate, as in BM25.

- SQLite: FTS5 ``MATCH '"t1" OR "t2"'``, ranked by ``-bm25()`` (BM25, k1=1.2, b=0.75).
- PostgreSQL: ``search_vector @@ to_tsquery('simple', "'t1' | 't2'")``, ranked by
  ``ts_rank_cd`` weighted by each term's idf (see :mod:`.pgsearch`). The ``simple``
  configuration (no stemming, no stopwords in the index) is chosen so PostgreSQL matches
  the same words as every other backend (``english`` would stem "languages" to
  "languag" and match where SQLite, MongoDB's ``none`` and the shared BM25 do not); the
  query side drops stopwords itself, so "the" and "is" never rank.
- MySQL/MariaDB: ``MATCH (text) AGAINST ('t1 t2' IN NATURAL LANGUAGE MODE)`` (InnoDB's
  tf-idf). InnoDB does not index words shorter than ``innodb_ft_min_token_size`` (3 by
  default) nor its own stopword list, so a query made only of such words ("AI", "go",
  "UK") finds nothing there; set ``innodb_ft_min_token_size`` (and rebuild the index) to
  change that.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ...core.ranking import query_terms
from .schema import memories
from .types import MYSQL

FTS_TABLE = "praisondb_memories_fts"
_QUERY = sa.bindparam("q", type_=sa.String())
_SCOPE = sa.bindparam("scope", type_=memories.c.scope.type)
_OWNER = sa.bindparam("owner", type_=memories.c.owner.type)
_LIMIT = sa.bindparam("limit", type_=sa.BigInteger())

MEMORY_COLUMNS = (
    memories.c.id,
    memories.c.scope,
    memories.c.owner,
    memories.c.text,
    memories.c.importance,
    memories.c.relevance,
    memories.c.quality,
    memories.c.metadata,
    memories.c.embedding,
    memories.c.created_at,
)


def engine_query(dialect: str, query: str) -> str | None:
    """The one bound value the engine gets for ``query``; None when no term is left."""
    terms = query_terms(query)
    if not terms:
        return None
    if dialect == "sqlite":  # FTS5 strings: double quotes, a quote inside doubled
        return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
    return " ".join(terms)  # natural language mode has no operators


@functools.cache
def search_statement(dialect: str) -> sa.Select[Any]:
    """Rows of MEMORY_COLUMNS plus the raw rank (higher is better), best first; binds
    ``q`` (from :func:`engine_query`), ``scope``, ``owner`` and ``limit``."""
    in_scope = (memories.c.scope == _SCOPE, memories.c.owner == _OWNER)
    rank: sa.ColumnElement[Any]
    if dialect == "sqlite":
        fts = sa.table(FTS_TABLE, sa.column("rowid"))
        table: sa.ColumnElement[Any] = sa.literal_column(FTS_TABLE)
        rank = (-sa.func.bm25(table, type_=sa.Double())).label("rank")
        stmt = (
            sa.select(*MEMORY_COLUMNS, rank)
            .select_from(fts.join(memories, memories.c.num == fts.c.rowid))
            .where(table.op("MATCH")(_QUERY), *in_scope)
        )
    elif dialect in MYSQL:
        matched = mysql.match(memories.c.text, against=_QUERY).in_natural_language_mode()
        rank = sa.type_coerce(matched, sa.Double()).label("rank")
        stmt = sa.select(*MEMORY_COLUMNS, rank).where(matched, *in_scope)
    else:  # pragma: no cover - the store opens only these dialects
        raise ValueError(dialect)
    return stmt.order_by(
        sa.desc(sa.literal_column("rank")), memories.c.created_at.desc(), memories.c.id
    ).limit(_LIMIT)
