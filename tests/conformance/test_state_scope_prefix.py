"""Listing state by scope prefix (``list_entries(scope_prefix=...)``): a range on the scope,
so the store hands back only those scopes' entries, pages included (the server keeps each
tenant's state under ``tenant:T:`` and lists it this way)."""

from __future__ import annotations

from praisondb import PraisonDB
from praisondb.model import StateEntry


def _pages(db: PraisonDB, scopes: str, key_prefix: str = "", size: int = 3) -> list[StateEntry]:
    """Every page of one scope-prefix listing; each page is checked to hold only matches."""
    found: list[StateEntry] = []
    after: tuple[str, str] | None = None
    while True:
        page = db.state_store.list_entries(
            None, key_prefix, limit=size, after=after, scope_prefix=scopes
        )
        assert all(e.scope.startswith(scopes) for e in page)  # nothing else left the store
        found.extend(page)
        if len(page) < size:
            return found
        after = (page[-1].scope, page[-1].key)


def test_a_scope_prefix_listing_returns_only_those_scopes(db: PraisonDB, uid: str) -> None:
    mine = f"t:{uid}%_:"  # LIKE wildcards, taken literally
    own = [(f"{mine}{s}", k) for s in ("a", "b", "b/c") for k in ("k1", "k2", "x")]
    others = [(f"t:{uid}zz:{s}", k) for s in ("a", "b") for k in ("k1", "k2")]
    others += [(f"t:{uid}%_", "k1"), (f"t:{uid}%_;", "k1"), (f"t:{uid}%:", "k1")]
    for scope, key in others[:3] + own + others[3:]:
        db.state.set(key, 1, scope=scope)
    found = _pages(db, mine)
    assert [(e.scope, e.key) for e in found] == sorted(own)
    keyed = _pages(db, mine, key_prefix="k", size=2)
    assert [(e.scope, e.key) for e in keyed] == sorted(o for o in own if o[1].startswith("k"))
    assert db.state_store.list_entries(f"{mine}b", scope_prefix=mine) == [
        e for e in found if e.scope == f"{mine}b"
    ]
    assert db.state_store.list_entries(f"t:{uid}zz:a", scope_prefix=mine) == []
    assert db.state_store.list_entries(None, scope_prefix=f"t:{uid}nobody:") == []
    wider = db.state_store.list_entries(None, scope_prefix=f"t:{uid}%")
    assert len(wider) == len(own) + 3
