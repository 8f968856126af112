"""Runs, spans and checkpoints in SQL: upserts by id, reads newest-first then reversed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from ...errors import NotFound
from ...model import Checkpoint, Run, Span
from . import dialects
from .core import SQLCore
from .schema import checkpoints, runs, spans

T = TypeVar("T")
_SID = sa.bindparam("sid", type_=runs.c.session_id.type)
_LIMIT = sa.bindparam("limit", type_=sa.BigInteger())


def _run_values(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "session_id": run.session_id,
        "model": run.model,
        "status": run.status,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "error": run.error,
        "metadata": run.metadata,
    }


def _newest_first_then_reverse(rows: Sequence[Any], convert: Callable[[Any], T]) -> list[T]:
    return [convert(row) for row in reversed(rows)]


class SQLItemsMixin(SQLCore):
    """The runs/spans/checkpoints part of SQLStore."""

    # -- runs, spans, checkpoints ----------------------------------------------
    def _upsert(self, table: sa.Table, values: dict[str, Any], action: str) -> None:
        stmt = dialects.upsert(self._dialect, table, [values])
        self._tx(lambda conn: conn.execute(stmt), write=True, action=action, races=2)

    def save_run(self, run: Run) -> None:
        self._upsert(runs, _run_values(run), "save_run")

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
        values = {
            "id": span.id,
            "trace_id": span.trace_id,
            "parent_id": span.parent_id,
            "session_id": span.session_id,
            "user_id": span.user_id,
            "name": span.name,
            "status": span.status,
            "attributes": span.attributes,
            "started_at": span.started_at,
            "ended_at": span.ended_at,
        }
        self._upsert(spans, values, "save_span")

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
    ) -> list[Span]:
        if limit is not None and limit <= 0:
            return []
        filters = {"trace": trace_id, "sid": session_id, "user": user_id}
        given = tuple(sorted(name for name, value in filters.items() if value is not None))
        columns = {"trace": spans.c.trace_id, "sid": spans.c.session_id, "user": spans.c.user_id}

        def build() -> sa.Select[Any]:
            stmt = sa.select(spans).order_by(spans.c.started_at.desc(), spans.c.id.desc())
            for name in given:
                stmt = stmt.where(columns[name] == sa.bindparam(name, type_=spans.c.id.type))
            if roots_only:
                stmt = stmt.where(spans.c.parent_id.is_(None))
            return stmt.limit(_LIMIT) if limit is not None else stmt

        key = ("spans", given, roots_only, limit is not None)
        rows = self._rows(key, build, {**filters, "limit": limit})
        names = spans.c.keys()
        return _newest_first_then_reverse(
            rows, lambda row: Span(**dict(zip(names, row, strict=True)))
        )

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        values = {
            "id": checkpoint.id,
            "session_id": checkpoint.session_id,
            "seq": checkpoint.seq,
            "state": checkpoint.state,
            "label": checkpoint.label,
            "created_at": checkpoint.created_at,
        }
        self._upsert(checkpoints, values, "save_checkpoint")

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
