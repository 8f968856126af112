"""``StateView.modify`` gives up with a clear Conflict when every attempt loses a race.

The race is staged from inside ``change`` (another writer gets in between the read and
the compare-and-set), which only a sync caller can do: on the async face ``change``
runs inside the bridge. The backends' compare-and-set itself is proven on every backend
and face in tests/conformance/test_multiagent.py."""

from __future__ import annotations

from typing import Any

import pytest

from praisondb import Conflict, PraisonDB, ValidationError


def test_modify_gives_up_after_its_attempts_with_a_clear_conflict() -> None:
    with PraisonDB("memory://") as db:
        shared = db.session("s-1").shared_state
        shared["n"] = 0
        calls: list[Any] = []

        def racing(value: Any) -> Any:
            calls.append(value)
            db.session("s-1").shared_state["n"] = value + 100  # someone else writes first
            return value + 1

        with pytest.raises(Conflict, match="2 compare-and-set attempts"):
            shared.modify("n", racing, attempts=2)
        assert calls == [0, 100] and shared["n"] == 200  # re-ran on the fresh value
        assert shared.modify("n", lambda v: v + 1).value == 201
        with pytest.raises(ValidationError):
            shared.modify("n", lambda v: v, attempts=0)
