"""Property tests of the input contract, on every backend.

Every generated example is either stored exactly (read back equal, same types at every
level) or refused with ValidationError, and which of the two is decided by an oracle
written here independently of praisondb/validation.py: nothing else may happen.

Reproducible: ``derandomize=True`` and no example database, so CI draws the same
examples every run. Only the session-scoped ``db`` fixture is used inside ``@given``
(each example makes its own unique ids), so the function-scoped-fixture health check
does not apply and nothing is suppressed.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from praisondb import PraisonDB, ValidationError

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 30

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True, database=None)

# -- strategies ---------------------------------------------------------------------------

TRICKY = [
    "\x00",
    "\ud800",
    "\udfff",
    "😀",
    "\u200d",
    "👧",
    ".",
    "$",
    "%",
    "\ue000",
    "}",
    "{",
    "\\",
    '"',
    "é",
    " ",
]
tricky_text = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(), max_size=12)
any_text = st.text(max_size=12) | tricky_text
keys = st.sampled_from(["", ".", "$", "a.b", "$set", "%2E", "\x00", "\ud800", "😀"]) | any_text
edge_ints = st.sampled_from(
    [0, -1, 2**31, 2**53 + 1, INT_MAX, INT_MIN, INT_MAX + 1, INT_MIN - 1, 2**64, 2**70]
)
numbers = (
    st.integers(min_value=-(2**66), max_value=2**66)
    | edge_ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([-0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1])
)
scalars = st.none() | st.booleans() | numbers | any_text
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
metadata = st.dictionaries(keys, json_like, max_size=4)


# -- the oracle -----------------------------------------------------------------------------


def _text_ok(text: str) -> bool:
    return not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def is_json(value: Any, depth: int = 0) -> bool:
    """The documented contract, spelled out independently of praisondb/validation.py."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return INT_MIN <= value <= INT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return _text_ok(value)
    if isinstance(value, list):
        return depth < MAX_DEPTH and all(is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return depth < MAX_DEPTH and all(
            isinstance(k, str) and _text_ok(k) and is_json(v, depth + 1) for k, v in value.items()
        )
    return False


def id_ok(value: str) -> bool:
    return (
        0 < len(value) <= 255
        and _text_ok(value)
        and not any(ord(c) < 32 or ord(c) == 127 for c in value)
    )


def assert_same(got: Any, want: Any, where: str = "value") -> None:
    """Equal with the same types at every level; -0.0 is expected back as 0.0."""
    if isinstance(want, float) and want == 0.0:
        want = 0.0
    assert type(got) is type(want), f"{where}: {got!r} is {type(got).__name__}, want {want!r}"
    if isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            assert_same(got[k], want[k], f"{where}[{k!r}]")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want), where
    else:
        assert got == want, where


def _sid() -> str:
    return "prop-" + uuid.uuid4().hex


# -- properties ----------------------------------------------------------------------------


@PROPERTY
@given(meta=metadata)
def test_metadata_is_stored_exactly_or_refused(db: PraisonDB, meta: dict[str, Any]) -> None:
    sid = _sid()
    if not is_json(meta):
        with pytest.raises(ValidationError):
            db.sessions.create(sid, metadata=meta)
        assert not db.sessions.exists(sid)
        return
    db.sessions.create(sid, metadata=meta)
    assert_same(db.sessions.get(sid).metadata, meta, "session metadata")
    db.messages.append(sid, "user", "x", meta)
    assert_same(db.messages.list(sid)[0].metadata, meta, "message metadata")
    db.runs.start(sid, metadata=meta)
    assert_same(db.runs.list(sid)[0].metadata, meta, "run metadata")


@PROPERTY
@given(value=json_like)
def test_state_values_are_stored_exactly_or_refused(db: PraisonDB, value: Any) -> None:
    sid = _sid()
    scope = f"session:{sid}"
    if not is_json(value):
        with pytest.raises(ValidationError):
            db.state.set("k", value, scope=scope)
        assert db.state.get_entry("k", scope=scope) is None
        return
    db.state.set("k", value, scope=scope)
    entry = db.state.get_entry("k", scope=scope)
    assert entry is not None
    assert_same(entry.value, value, "state value")


@PROPERTY
@given(text=any_text | st.text(min_size=100, max_size=400), blocks=st.lists(metadata, max_size=3))
def test_message_content_is_stored_exactly_or_refused(
    db: PraisonDB, text: str, blocks: list[dict[str, Any]]
) -> None:
    sid = _sid()
    db.sessions.create(sid)
    for content in (text, blocks):
        if is_json(content):
            stored = db.messages.append(sid, "assistant", content)
            (got,) = db.messages.list(sid, after_seq=stored.seq - 1, limit=1)
            assert_same(got.content, content, "content")
        else:
            with pytest.raises(ValidationError):
                db.messages.append(sid, "assistant", content)
    assert db.messages.count(sid) == sum(is_json(c) for c in (text, blocks))


@PROPERTY
@given(
    raw=tricky_text
    | st.text(min_size=200, max_size=300)
    | st.sampled_from(["}", "{x}", " a ", "A"])
)
def test_ids_are_stored_exactly_or_refused(db: PraisonDB, raw: str) -> None:
    sid = raw + uuid.uuid4().hex[:8]  # unique per example, and still ends up over 255 at times
    if not id_ok(sid):
        with pytest.raises(ValidationError):
            db.sessions.create(sid)
        with pytest.raises(ValidationError):
            db.state.set(sid, 1, scope="app")
        return
    assert db.sessions.create(sid, user_id=sid).id == sid
    assert db.sessions.get(sid).id == sid
    db.messages.append(sid, "user", sid)
    assert [m.content for m in db.messages.list(sid)] == [sid]
    db.state.set(sid, sid, scope=f"session:{sid}")
    assert db.state.get(sid, scope=f"session:{sid}") == sid
    assert [e.key for e in db.state.list(f"session:{sid}")] == [sid]
    assert [s.id for s in db.sessions.list(user_id=sid).items] == [sid]
    assert db.sessions.delete(sid)


paging_value = (
    st.none()
    | st.integers(min_value=-3, max_value=8)
    | st.sampled_from([INT_MAX, INT_MAX + 1, INT_MIN, 2**70, True, False, 1.5, 2.0, "1", math.nan])
)


@pytest.fixture(scope="module")
def five(db: PraisonDB) -> str:
    sid = _sid()
    db.sessions.create(sid)
    db.messages.extend(sid, [{"role": "user", "content": str(i)} for i in range(1, 6)])
    return sid


def _ok_count(value: object) -> bool:
    return value is None or (type(value) is int and 0 <= value <= INT_MAX)


@PROPERTY
@given(after=paging_value, before=paging_value, last=paging_value, limit=paging_value)
def test_paging_gives_the_same_rows_everywhere_or_refuses(
    db: PraisonDB, five: str, after: Any, before: Any, last: Any, limit: Any
) -> None:
    args = {"after_seq": after, "before_seq": before, "last": last, "limit": limit}
    if not all(_ok_count(v) for v in args.values()):
        with pytest.raises(ValidationError):
            db.messages.list(five, **args)
        return
    seqs = [
        s for s in range(1, 6) if (after is None or s > after) and (before is None or s < before)
    ]
    if last is not None:
        seqs = seqs[-last:] if last else []
    if limit is not None:
        seqs = seqs[:limit]
    assert [m.seq for m in db.messages.list(five, **args)] == seqs
