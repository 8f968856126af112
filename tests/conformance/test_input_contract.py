"""What can be stored, identically on every backend (README "What can be stored").

JSON data only: dict with str keys, list, str, int in signed 64 bits, finite float,
bool, None. Anything else is ValidationError naming where the bad value sits; paging
arguments are ints in a documented range; TTLs are positive and at most 100 years.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from praisondb import PraisonDB, ValidationError

INT_MAX = 2**63 - 1
INT_MIN = -(2**63)


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int


NOT_JSON: list[tuple[str, Any, str]] = [
    (
        "aware_datetime",
        dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc),
        "datetime",
    ),
    ("naive_datetime", dt.datetime(2026, 1, 2), "datetime"),
    ("date", dt.date(2026, 1, 2), "date"),
    ("uuid", uuid.UUID(int=7), "UUID"),
    ("enum", Colour.RED, "Colour"),
    ("int_enum", Level.HIGH, "Level"),
    ("dataclass", Point(1), "Point"),
    ("bytes", b"x", "bytes"),
    ("set", {1}, "set"),
    ("tuple", (1, 2), "tuple"),
    ("decimal", decimal.Decimal("1.5"), "Decimal"),
    ("int_past_64_bits", 2**63, "9223372036854775808"),
    ("int_below_64_bits", INT_MIN - 1, "-9223372036854775809"),
    ("huge_int", 2**70, "1180591620717411303424"),
    ("nan", math.nan, "nan"),
    ("infinity", -math.inf, "inf"),
    ("lone_surrogate", "a\ud800b", "surrogate"),
]
IDS = [name for name, _, _ in NOT_JSON]


def _nested(bad: object) -> dict[str, Any]:
    return {"ok": 1, "a": [0, {"b": bad}]}


WRITERS: dict[str, Callable[[PraisonDB, str, dict[str, Any]], object]] = {
    "session_metadata": lambda db, uid, v: db.sessions.create(uid, metadata=v),
    "session_update": lambda db, uid, v: db.sessions.update(db.sessions.create(uid).id, metadata=v),
    "message_metadata": lambda db, uid, v: db.messages.append(
        db.sessions.create(uid).id, "user", "hi", v
    ),
    "content_block": lambda db, uid, v: db.messages.append(
        db.sessions.create(uid).id, "user", [{"type": "x", **v}]
    ),
    "state_value": lambda db, uid, v: db.state.set(uid, v, scope=f"user:{uid}"),
    "run_metadata": lambda db, uid, v: db.runs.start(db.sessions.create(uid).id, metadata=v),
    "checkpoint_state": lambda db, uid, v: db.checkpoints.create(
        db.sessions.create(uid).id, state=v
    ),
}


@pytest.mark.parametrize("where", sorted(WRITERS))
@pytest.mark.parametrize(("name", "bad", "named"), NOT_JSON, ids=IDS)
def test_non_json_values_are_refused_with_their_path(
    db: PraisonDB, uid: str, where: str, name: str, bad: object, named: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        WRITERS[where](db, uid, _nested(bad))
    text = str(caught.value)
    assert "['a'][1]['b']" in text, text
    assert named.lower() in text.lower(), text
    assert db.state.get(uid, scope=f"user:{uid}") is None
    assert db.messages.list(uid) == []


def test_non_str_keys_are_refused(db: PraisonDB, uid: str) -> None:
    with pytest.raises(ValidationError, match=r"metadata\['a'\]\[1\] has a key of type int"):
        db.sessions.create(uid, metadata={"a": {1: "x"}})
    assert not db.sessions.exists(uid)


def test_too_deep_nesting_is_refused(db: PraisonDB, uid: str) -> None:
    deep: Any = "leaf"
    for _ in range(30):
        deep = [deep]
    assert db.state.set(uid, deep, scope=f"user:{uid}").value == deep
    assert db.state.get(uid, scope=f"user:{uid}") == deep
    with pytest.raises(ValidationError, match="more than 30"):
        db.state.set(uid, [deep], scope=f"user:{uid}")


EDGES = [0, 1, -1, 2**31, -(2**31) - 1, 2**53 + 1, INT_MAX, INT_MIN]


def test_integer_edges_round_trip_everywhere(db: PraisonDB, uid: str) -> None:
    data = {"ints": EDGES}
    db.sessions.create(uid, metadata=data)
    db.messages.append(uid, "user", [{"type": "n", "v": EDGES}], data)
    db.state.set(uid, data, scope=f"user:{uid}")
    assert db.sessions.get(uid).metadata == data
    (message,) = db.messages.list(uid)
    assert message.metadata == data and message.content == [{"type": "n", "v": EDGES}]
    assert db.state.get(uid, scope=f"user:{uid}") == data
    for got in (
        db.sessions.get(uid).metadata["ints"],
        db.state.get(uid, scope=f"user:{uid}")["ints"],
    ):
        assert all(type(v) is int for v in got)


def test_negative_zero_is_stored_as_zero_everywhere(db: PraisonDB, uid: str) -> None:
    data = {"z": -0.0, "l": [-0.0, 1.5]}
    created = db.sessions.create(uid, metadata=data)
    message = db.messages.append(uid, "user", [{"type": "t", "z": -0.0}], data)
    entry = db.state.set(uid, -0.0, scope=f"user:{uid}")
    assert data == {"z": -0.0, "l": [-0.0, 1.5]}
    assert math.copysign(1.0, data["z"]) < 0, "the caller's dict is left alone"
    read = [
        created.metadata["z"],
        db.sessions.get(uid).metadata["z"],
        db.sessions.get(uid).metadata["l"][0],
        message.metadata["z"],
        message.content[0]["z"],  # type: ignore[index]
        db.messages.list(uid)[0].metadata["z"],
        db.messages.list(uid)[0].content[0]["z"],  # type: ignore[index]
        entry.value,
        db.state.get(uid, scope=f"user:{uid}"),
    ]
    assert [math.copysign(1.0, v) for v in read] == [1.0] * len(read)


# -- incr stays in signed 64 bits -------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "amount"),
    [(INT_MAX, 1), (INT_MAX - 5, 6), (INT_MIN, -1), (1, INT_MAX), (-2, INT_MIN)],
)
def test_incr_past_64_bits_is_refused_and_leaves_the_value(
    db: PraisonDB, uid: str, start: int, amount: int
) -> None:
    scope = f"user:{uid}"
    db.state.set(uid, start, scope=scope)
    with pytest.raises(ValidationError, match="signed 64 bits"):
        db.state.incr(uid, amount, scope=scope)
    entry = db.state.get_entry(uid, scope=scope)
    assert entry is not None and entry.value == start and type(entry.value) is int
    assert entry.version == 1
    assert db.state.incr(uid, -1 if start > 0 else 1, scope=scope) == start + (
        -1 if start > 0 else 1
    )


@pytest.mark.parametrize("amount", [2**63, 2**70, INT_MIN - 1, 1.0, True, "1", None])
def test_incr_amount_must_be_a_64_bit_int(db: PraisonDB, uid: str, amount: Any) -> None:
    scope = f"user:{uid}"
    with pytest.raises(ValidationError, match="amount"):
        db.state.incr(uid, amount, scope=scope)
    assert db.state.get_entry(uid, scope=scope) is None
    db.state.incr(uid, 5, scope=scope)
    with pytest.raises(ValidationError, match="amount"):
        db.state.incr(uid, amount, scope=scope)
    assert db.state.get(uid, scope=scope) == 5


def test_incr_reaches_the_edges_exactly(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"
    assert db.state.incr(uid, INT_MAX, scope=scope) == INT_MAX
    assert db.state.get(uid, scope=scope) == INT_MAX
    assert db.state.incr(uid, INT_MIN, scope=scope) == -1
    assert db.state.incr(uid, INT_MIN + 1, scope=scope) == INT_MIN
    value = db.state.get(uid, scope=scope)
    assert value == INT_MIN and type(value) is int


# -- ttl ----------------------------------------------------------------------------------

BAD_TTLS = [
    math.nan,
    math.inf,
    -math.inf,
    1e20,
    10**30,
    36_525 * 86_400 + 1,
    dt.timedelta(days=36_526),
    dt.timedelta.max,
    0,
    -1,
    -0.5,
    dt.timedelta(0),
    True,
    "60",
    [60],
]


@pytest.mark.parametrize("ttl", BAD_TTLS, ids=[repr(t) for t in BAD_TTLS])
def test_bad_ttl_is_a_validation_error_naming_the_range(db: PraisonDB, uid: str, ttl: Any) -> None:
    scope = f"user:{uid}"
    with pytest.raises(ValidationError, match="ttl must"):
        db.state.set(uid, 1, scope=scope, ttl=ttl)
    with pytest.raises(ValidationError, match="ttl must"):
        db.state.incr(uid, 1, scope=scope, ttl=ttl)
    assert db.state.get_entry(uid, scope=scope) is None


def test_longest_ttl_is_accepted(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"
    entry = db.state.set(uid, 1, scope=scope, ttl=36_525 * 86_400)
    assert entry.expires_at is not None
    got = db.state.get_entry(uid, scope=scope)
    assert got is not None and got.expires_at is not None
    assert got.expires_at.year >= dt.datetime.now(dt.timezone.utc).year + 99


# -- paging arguments --------------------------------------------------------------------

BAD_COUNTS: list[Any] = [2**63, 2**70, -1, True, False, 1.5, 1.0, "1", [1], math.nan]


@pytest.fixture
def fourteen(db: PraisonDB, uid: str) -> str:
    db.sessions.create(uid)
    db.messages.extend(uid, [{"role": "user", "content": str(i)} for i in range(14)])
    return uid


@pytest.mark.parametrize("arg", ["last", "limit", "after_seq", "before_seq"])
@pytest.mark.parametrize("bad", BAD_COUNTS, ids=[repr(b) for b in BAD_COUNTS])
def test_message_paging_takes_ints_only(db: PraisonDB, fourteen: str, arg: str, bad: Any) -> None:
    with pytest.raises(ValidationError, match=arg):
        db.messages.list(fourteen, **{arg: bad})


@pytest.mark.parametrize("arg", ["last", "limit", "after_seq", "before_seq"])
def test_message_paging_at_the_top_of_the_range(db: PraisonDB, fourteen: str, arg: str) -> None:
    got = db.messages.list(fourteen, **{arg: INT_MAX})
    assert len(got) == (0 if arg == "after_seq" else 14)
    assert len(db.messages.list(fourteen, **{arg: 0})) == (14 if arg == "after_seq" else 0)


@pytest.mark.parametrize(
    ("arg", "bad"),
    [("after_seq", 2**63), ("after_seq", "1"), ("batch", 0), ("batch", True), ("batch", 2**63)],
)
def test_iterate_checks_its_arguments_up_front(
    db: PraisonDB, fourteen: str, arg: str, bad: Any
) -> None:
    with pytest.raises(ValidationError, match=arg):
        next(db.messages.iterate(fourteen, **{arg: bad}))
    assert [m.content for m in db.messages.iterate(fourteen, batch=5)] == [
        str(i) for i in range(14)
    ]


@pytest.mark.parametrize("bad", BAD_COUNTS, ids=[repr(b) for b in BAD_COUNTS])
def test_every_other_count_takes_ints_only(db: PraisonDB, fourteen: str, bad: Any) -> None:
    uid = fourteen
    db.runs.start(uid)
    db.state.set("k", 1, scope=f"user:{uid}")
    calls: list[Callable[[], object]] = [
        lambda: db.sessions.list(limit=bad),
        lambda: next(db.sessions.iterate(page_size=bad)),
        lambda: db.runs.list(uid, limit=bad),
        lambda: db.state.list(f"user:{uid}", limit=bad),
        lambda: db.messages.delete(uid, from_seq=bad),
        lambda: db.messages.delete(uid, to_seq=bad),
        lambda: db.state.set("k", 2, scope=f"user:{uid}", expected_version=bad),
        lambda: db.state.delete("k", scope=f"user:{uid}", expected_version=bad),
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            call()
    assert db.messages.count(uid) == 14
    assert db.state.get("k", scope=f"user:{uid}") == 1


def test_counts_at_the_top_of_the_range(db: PraisonDB, fourteen: str) -> None:
    uid = fourteen
    db.runs.start(uid)
    db.state.set("k", 1, scope=f"user:{uid}")
    assert len(db.runs.list(uid, limit=INT_MAX)) == 1
    assert len(db.state.list(f"user:{uid}", limit=INT_MAX)) == 1
    assert db.messages.delete(uid, from_seq=INT_MAX) == 0
    assert db.messages.delete(uid, from_seq=14, to_seq=INT_MAX) == 1
    assert db.messages.count(uid) == 13


FLOAT_EDGES = [1e16, 1.5e16, -2.5e20, 2.0**63, 1e300, 1.7976931348623157e308, 5e-324, 1e-7, 3.0]


def test_float_edges_come_back_as_the_same_floats(db: PraisonDB, uid: str) -> None:
    """PostgreSQL's jsonb keeps NUMERIC: 1e16 must not come back as an int."""
    data = {"f": FLOAT_EDGES, "text": "1e+16 stays text"}
    db.sessions.create(uid, metadata=data)
    db.messages.append(uid, "user", [{"type": "f", "v": FLOAT_EDGES}], data)
    db.state.set(uid, data, scope=f"user:{uid}")
    db.runs.start(uid, metadata=data)
    (message,) = db.messages.list(uid)
    for got in (
        db.sessions.get(uid).metadata,
        message.metadata,
        {"f": message.content[0]["v"], "text": data["text"]},  # type: ignore[index]
        db.state.get(uid, scope=f"user:{uid}"),
        db.runs.list(uid)[0].metadata,
    ):
        assert got == data
        assert [type(v) for v in got["f"]] == [float] * len(FLOAT_EDGES), got


def test_imported_sessions_follow_the_same_contract(db: PraisonDB, uid: str) -> None:
    """An export from elsewhere is untrusted: out-of-range counts are refused, -0.0 is 0.0."""
    db.sessions.create(uid)
    db.messages.append(uid, "user", "hi")
    db.runs.start(uid)
    db.state.set("z", 1.5, scope=f"session:{uid}")
    exported = db.sessions.export(uid)
    db.sessions.delete(uid)

    too_many = {**exported, "runs": [{**exported["runs"][0], "input_tokens": 2**63}]}
    with pytest.raises(ValidationError, match="input_tokens"):
        db.sessions.import_session(too_many)
    assert not db.sessions.exists(uid)

    negative_zero = {**exported, "state": [{**exported["state"][0], "value": {"z": -0.0}}]}
    db.sessions.import_session(negative_zero)
    value = db.state.get("z", scope=f"session:{uid}")
    assert value == {"z": 0.0} and math.copysign(1.0, value["z"]) == 1.0
