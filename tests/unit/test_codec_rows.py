"""Stores derive their rows and documents from praisondb.codec, so a model field added
once reaches every store: these fail when a mapping drops, renames or mis-encodes one."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timezone

import pytest

from praisondb.codec import Model, to_values
from praisondb.model import Checkpoint, Run, SessionInfo, Span
from praisondb.stores.mongo import codec as mongo
from praisondb.stores.sql.bulk import session_values
from praisondb.stores.sql.schema import checkpoints, runs, sessions, spans

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
T1 = datetime(2024, 5, 6, 7, 9, 0, 654321, tzinfo=timezone.utc)
HOSTILE = {"a.b": {"$x": 1}, "plain": [1, "two"]}

SAMPLES: list[Model] = [
    SessionInfo("s1", "u", "bot", "t", HOSTILE, "p", 4, T0, T1, 9, 12),
    Run("s1", "r1", "m", "done", 11, 22, T0, T1, "boom", HOSTILE),
    Run("s1", "r2", None, "running", 0, 0, T0, None, None, {}),
    Checkpoint("s1", 3, HOSTILE, "label", "c1", T0),
    Span("t1", "step", "sp1", None, "s1", "u", "ok", HOSTILE, T0, T1),
    Span("t1", "step", "sp2", "sp1", None, None, "error", {}, T0, None),
]
MONGO = {
    SessionInfo: (mongo.session_doc, mongo.parse_session),
    Run: (mongo.run_doc, mongo.parse_run),
    Checkpoint: (mongo.checkpoint_doc, mongo.parse_checkpoint),
    Span: (mongo.span_doc, mongo.parse_span),
}


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_mongo_documents_carry_every_field_and_come_back_equal(obj: Model) -> None:
    to_doc, parse = MONGO[type(obj)]
    doc = to_doc(obj)
    renamed = {"id": "_id", "session_id": "sid" if isinstance(obj, (Run, Checkpoint)) else None}
    expected = {renamed.get(f.name) or f.name for f in fields(obj)}
    assert set(doc) == expected
    assert all(
        type(doc[f.name]) is int
        for f in fields(obj)
        if f.name.endswith("_at") and doc.get(f.name) is not None
    )
    assert parse(doc) == obj


TABLES = {SessionInfo: sessions, Run: runs, Checkpoint: checkpoints, Span: spans}


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_sql_rows_fill_every_column(obj: Model) -> None:
    table = TABLES[type(obj)]
    row = session_values(obj) if isinstance(obj, SessionInfo) else to_values(obj)
    assert set(row) == {c.name for c in table.columns}
    expected = {f.name: getattr(obj, f.name) for f in fields(obj)}
    if isinstance(obj, SessionInfo):  # the indexed copy of updated_at (migration 0003)
        expected["updated_floor"] = obj.updated_at
    assert row == expected
