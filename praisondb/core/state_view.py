"""``StateView``: one state scope as a dict, every operation going to the store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, ValidationError
from ..model import JSON, StateEntry
from .arguments import TTL

if TYPE_CHECKING:
    from .repositories import DataPort


class StateView(MutableMapping[str, Any]):
    """A dict-like window on one state scope; every operation goes to the store.

    ``prefix`` namespaces keys inside a shared scope (``temp`` values of different
    sessions live side by side in the one process-local ``temp`` scope).
    """

    def __init__(self, db: DataPort, scope: str, prefix: str = "") -> None:
        self._db = db
        self.scope = scope
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"StateView({self.scope!r}, {self.to_dict()!r})"

    def _key(self, key: str) -> str:
        if not isinstance(key, str):
            raise ValidationError(f"state key must be a string, not {type(key).__name__}")
        return self._prefix + key

    def entry(self, key: str) -> StateEntry | None:
        """The live entry with its version and expiry, or None."""
        return self._db.state.get_entry(self._key(key), scope=self.scope)

    def get(self, key: str, default: JSON = None) -> JSON:
        return self._db.state.get(self._key(key), default, scope=self.scope)

    def set(self, key: str, value: JSON, *, ttl: TTL = None) -> StateEntry:
        """Write one value; ``ttl`` (seconds or timedelta) makes it expire."""
        return self._db.state.set(self._key(key), value, scope=self.scope, ttl=ttl)

    def delete(self, key: str) -> bool:
        return self._db.state.delete(self._key(key), scope=self.scope)

    def compare_and_set(
        self, key: str, value: JSON, expected_version: int, *, ttl: TTL = None
    ) -> StateEntry:
        """Write only if the entry is still at ``expected_version`` (0: must not exist);
        Conflict otherwise. Read the version with :meth:`entry`."""
        return self._db.state.compare_and_set(
            self._key(key), value, expected_version, scope=self.scope, ttl=ttl
        )

    def modify(
        self,
        key: str,
        change: Callable[[JSON], JSON],
        default: JSON = None,
        *,
        ttl: TTL = None,
        attempts: int = 100,
    ) -> StateEntry:
        """Read-modify-write without lost updates, across processes: ``change`` gets the
        current value (``default`` when absent) and returns the new one, which is written
        by compare-and-set; on a clash it runs again on the fresh value, so it must not
        have side effects. After ``attempts`` clashes in a row: Conflict."""
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValidationError(f"attempts must be a positive integer, not {attempts!r}")
        for _ in range(attempts):
            current = self.entry(key)
            value, version = (default, 0) if current is None else (current.value, current.version)
            try:
                return self.compare_and_set(key, change(value), version, ttl=ttl)
            except Conflict:
                continue
        raise Conflict(
            f"state {self.scope}/{key}: {attempts} compare-and-set attempts in a row lost to "
            "other writers; retry later or pass a larger attempts="
        )

    def update(  # type: ignore[override]
        self, values: Mapping[str, JSON] | None = None, /, *, ttl: TTL = None, **more: JSON
    ) -> None:
        """Write several values (one write each), all with the same ``ttl``."""
        for key, value in {**(values or {}), **more}.items():
            self.set(key, value, ttl=ttl)

    def incr(self, key: str, amount: int = 1, *, ttl: TTL = None) -> int:
        """Atomically add to an integer value, across threads and processes."""
        return self._db.state.incr(self._key(key), amount, scope=self.scope, ttl=ttl)

    def entries(self) -> list[StateEntry]:
        return self._db.state.list(self.scope, self._prefix)

    def to_dict(self) -> dict[str, JSON]:
        cut = len(self._prefix)
        return {e.key[cut:]: e.value for e in self.entries()}

    def clear(self) -> None:
        if self._prefix:
            for entry in self.entries():
                self._db.state.delete(entry.key, scope=self.scope)
        else:
            self._db.state.clear(self.scope)

    def __getitem__(self, key: str) -> JSON:
        entry = self.entry(key)
        if entry is None:
            raise KeyError(key)
        return entry.value

    def __setitem__(self, key: str, value: JSON) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.entry(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.entries())
