"""Runs, spans and checkpoints in SQL: upserts by id, reads newest-first then reversed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from ...codec import to_values
from ...errors import NotFound
from ...model import Checkpoint, Run, Span
from .._kit import prefix_upper_bound
from .core import SQLCore
from .schema import checkpoints, runs, spans
from .statements import upsert

T = TypeVar("T")
_SID = sa.bindparam("sid", type_=runs.c.session_id.type)
_LIMIT = sa.bindparam("limit", type_=sa.BigInteger())


def id_range(
    column: sa.ColumnElement[str],
    prefix: str | None,
    excluded: str | None,
    binds: dict[str, Any] | None = None,
) -> list[sa.ColumnElement[bool]]:
    """Conditions keeping ids that start with ``prefix`` and not with ``excluded`` (empty
    or None: no bound): ranges on the column's index, no LIKE to escape. With ``binds``
    the values are named parameters (``lo``, ``hi``, ``xlo``, ``xhi``) put in it, so a
    cached statement's shape does not hold them."""

    def value(name: str, text: str) -> Any:
        if binds is None:
            return text
        binds[name] = text
        return sa.bindparam(name, type_=column.type)

    where: list[sa.ColumnElement[bool]] = []
    if prefix:
        where.append(column >= value("lo", prefix))
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            where.append(column < value("hi", upper))
    if excluded:
        below = column < value("xlo", excluded)
        upper = prefix_upper_bound(excluded)
        where.append(below if upper is None else sa.or_(below, column >= value("xhi", upper)))
    return where


def _newest_first_then_reverse(rows: Sequence[Any], convert: Callable[[Any], T]) -> list[T]:
    return [convert(row) for row in reversed(rows)]


class SQLItemsMixin(SQLCore):
    """The runs/spans/checkpoints part of SQLStore."""

    # -- runs, spans, checkpoints ----------------------------------------------
    def _upsert(self, table: sa.Table, values: dict[str, Any], action: str) -> None:
        stmt = upsert(self._dialect, table, [values])
        self._tx(lambda conn: conn.execute(stmt), write=True, action=action, races=2)

    def save_run(self, run: Run) -> None:
        self._upsert(runs, to_values(run), "save_run")

    def get_run(self, run_id: str) -> Run:
        row = self._tx(
            lambda conn: conn.execute(sa.select(runs).where(runs.c.id == run_id)).first(),
            action="get_run",
        )
        if row is None:
            raise NotFound(f"run {run_id!r} not found")
        return Run(**row._mapping)

    def list_runs(self, session_id: str, *, limit: int | None = None) -> list[Run]:
        if limit is not None and limit <= 0:
            return []

        def build() -> sa.Select[Any]:
            stmt = (
                sa.select(runs)
                .where(runs.c.session_id == _SID)
                .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            )
            return stmt.limit(_LIMIT) if limit is not None else stmt

        rows = self._rows(("runs", limit is not None), build, {"sid": session_id, "limit": limit})
        names = runs.c.keys()
        return _newest_first_then_reverse(
            rows, lambda row: Run(**dict(zip(names, row, strict=True)))
        )

    def save_span(self, span: Span) -> None:
        self._upsert(spans, to_values(span), "save_span")

    def get_span(self, span_id: str) -> Span:
        rows = self._rows(
            "span",
            lambda: sa.select(spans).where(spans.c.id == sa.bindparam("id", type_=spans.c.id.type)),
            {"id": span_id},
        )
        if not rows:
            raise NotFound(f"span {span_id!r} not found")
        return Span(**dict(zip(spans.c.keys(), rows[0], strict=True)))

    def list_spans(
        self,
        *,
        trace_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        roots_only: bool = False,
        limit: int | None = None,
        id_prefix: str | None = None,
        exclude_id_prefix: str | None = None,
    ) -> list[Span]:
        if limit is not None and limit <= 0:
            return []
        key, build, values = self._span_listing(
            trace_id, session_id, user_id, roots_only, limit, id_prefix, exclude_id_prefix
        )
        rows = self._rows(key, build, values)
        names = spans.c.keys()
        return _newest_first_then_reverse(
            rows, lambda row: Span(**dict(zip(names, row, strict=True)))
        )

    @staticmethod
    def _span_listing(
        trace_id: str | None,
        session_id: str | None,
        user_id: str | None,
        roots_only: bool,
        limit: int | None,
        id_prefix: str | None,
        exclude_id_prefix: str | None,
    ) -> tuple[Any, Callable[[], sa.Select[Any]], dict[str, Any]]:
        """The statement of ``list_spans``: its cache key, builder and bound values."""
        filters = {"trace": trace_id, "sid": session_id, "user": user_id}
        given = tuple(sorted(name for name, value in filters.items() if value is not None))
        columns = {"trace": spans.c.trace_id, "sid": spans.c.session_id, "user": spans.c.user_id}
        bounds: dict[str, Any] = {}
        ids = id_range(spans.c.id, id_prefix, exclude_id_prefix, bounds)

        def build() -> sa.Select[Any]:
            stmt = sa.select(spans).order_by(spans.c.started_at.desc(), spans.c.id.desc())
            for name in given:
                stmt = stmt.where(columns[name] == sa.bindparam(name, type_=spans.c.id.type))
            if roots_only:
                stmt = stmt.where(spans.c.parent_id.is_(None))
            stmt = stmt.where(*ids)  # primary-key ranges
            return stmt.limit(_LIMIT) if limit is not None else stmt

        key = ("spans", given, roots_only, limit is not None, tuple(sorted(bounds)))
        return key, build, {**filters, **bounds, "limit": limit}

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._upsert(checkpoints, to_values(checkpoint), "save_checkpoint")

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        row = self._tx(
            lambda conn: conn.execute(
                sa.select(checkpoints).where(checkpoints.c.id == checkpoint_id)
            ).first(),
            action="get_checkpoint",
        )
        if row is None:
            raise NotFound(f"checkpoint {checkpoint_id!r} not found")
        return Checkpoint(**row._mapping)

    def list_checkpoints(self, session_id: str) -> list[Checkpoint]:
        def build() -> sa.Select[Any]:
            return (
                sa.select(checkpoints)
                .where(checkpoints.c.session_id == _SID)
                .order_by(checkpoints.c.created_at, checkpoints.c.id)
            )

        rows = self._rows("checkpoints", build, {"sid": session_id})
        names = checkpoints.c.keys()
        return [Checkpoint(**dict(zip(names, row, strict=True))) for row in rows]

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        return bool(
            self._tx(
                lambda conn: (
                    conn.execute(
                        checkpoints.delete().where(checkpoints.c.id == checkpoint_id)
                    ).rowcount
                ),
                write=True,
                action="delete_checkpoint",
            )
        )
