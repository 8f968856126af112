"""How tenants share one store without seeing each other.

Mechanism: **ids and scopes are namespaced in the store**, and listings filter on the
namespace.

- The ``default`` tenant stores ids and scopes exactly as given (a server without API
  keys is a plain remote store: ``praisondb copy`` through it keeps every id).
- Any other tenant ``T`` stores session, run, checkpoint, span and trace ids as
  ``~T~<id>`` and state scopes as ``tenant:T:<scope>``; every record going out has the
  prefix taken off again, and one whose id is not the caller's is reported missing (a
  foreign session is a 404, never a 403, so its existence does not leak). Two tenants
  may use the same ids without colliding.
- When the server has tenants (an authenticator is configured), those two prefixes are
  reserved: the default tenant may not use ids starting with ``~`` or scopes starting
  with ``tenant:``, so it cannot reach into another tenant's namespace either.
- A principal holding a signed session token (``session_id`` set) reaches that one
  session only: its messages, runs, checkpoints, spans and ``session:<id>`` state.

Listing a tenant's sessions or spans is an id-prefix range in the store
(``SessionQuery.id_prefix``, ``list_spans(id_prefix=...)``) and listing its state a
scope-prefix range (``list_entries(scope_prefix=...)``), so none reads other tenants'
rows; the default tenant of a shared store lists sessions and spans with the ``~`` id
range excluded in the store (``exclude_id_prefix``), and state by jumping past the
``tenant:`` range (one page of it is read). Errors name ids as the tenant sent them
(:func:`public_text`). The cost: a tenant's ids are shorter than 255 characters by its
prefix.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar

from ..errors import NotFound, ValidationError
from ..model import Checkpoint, MemoryItem, Message, Run, SessionInfo, Span, StateEntry
from ..validation import MAX_ID_LENGTH, MAX_SCOPE_LENGTH
from .auth import Principal

DEFAULT_TENANT = "default"
RESERVED_SCOPE = "praisondb.keys"
"""The state scope the server keeps for itself (API keys, see keys.py); no route reads or
writes it, for any tenant."""
M = TypeVar("M", SessionInfo, Message, Run, Checkpoint, Span, MemoryItem)

_ID_FIELDS: dict[type, tuple[str, ...]] = {
    # the first field decides whose record it is
    SessionInfo: ("id", "parent_id"),
    Message: ("session_id", "run_id"),
    Run: ("session_id", "id"),
    Checkpoint: ("session_id", "id"),
    Span: ("id", "trace_id", "parent_id", "session_id"),
    MemoryItem: ("owner", "id"),
}


class Tenancy:
    """Maps the ids and scopes of one principal into the store and back."""

    def __init__(self, *, shared: bool) -> None:
        self.shared = shared
        """Whether several tenants use the store (an authenticator is configured)."""

    # -- ids ------------------------------------------------------------------------
    def plain(self, principal: Principal) -> bool:
        """Whether ``principal``'s ids go to the store untouched and unchecked."""
        return not self.shared and principal.session_id is None and _is_default(principal)

    def store_id(self, principal: Principal, value: str, what: str = "id") -> str:
        if _is_default(principal):
            if self.shared and value.startswith("~"):
                raise ValidationError(f"{what} {value[:40]!r}: ids starting with '~' are reserved")
            return value
        stored = f"~{principal.tenant}~{value}"
        if len(stored) > MAX_ID_LENGTH:
            raise ValidationError(
                f"{what} is too long for tenant {principal.tenant!r}: at most "
                f"{MAX_ID_LENGTH - len(stored) + len(value)} characters"
            )
        return stored

    def id_prefix(self, principal: Principal, prefix: str | None) -> str | None:
        """The stored id prefix a listing of ``principal``'s sessions is bound to (the store
        reads that range only), with the caller's own ``prefix`` inside it. A session
        token's listing is bound to its one session's id (NotFound: no session of it
        matches ``prefix``)."""
        if principal.session_id is not None:
            if prefix and not principal.session_id.startswith(prefix):
                raise NotFound("no session matches id_prefix")
            return self.store_id(principal, principal.session_id, "session id")
        if prefix:
            return self.store_id(principal, prefix, "id_prefix")
        return None if _is_default(principal) else f"~{principal.tenant}~"

    def id_range(self, principal: Principal, prefix: str | None) -> str | None:
        """The stored id prefix a listing of ``principal``'s spans is bound to: its
        namespace, with the caller's own ``prefix`` inside it (None: the default tenant's
        listing has no prefix, :meth:`id_exclusion` keeps it out of the tenants' ids)."""
        if prefix:
            return self.store_id(principal, prefix, "id_prefix")
        return None if _is_default(principal) else f"~{principal.tenant}~"

    def id_exclusion(
        self, principal: Principal, excluded: str | None, bound: str | None
    ) -> tuple[str | None, str | None]:
        """For a listing bound to the stored id prefix ``bound``: the stored id prefix the
        store skips, and the caller's ``excluded`` if the server must still filter it out
        itself. The default tenant of a shared store skips every ``~`` id in the store
        (the tenants' range, one jump); a caller's own exclusion beside that is the one
        left to the server."""
        if self.plain(principal) or (_is_default(principal) and not self.shared):
            return excluded or None, None  # '~' ids are the caller's own here
        if not _is_default(principal):
            return (
                self.store_id(principal, excluded, "exclude_id_prefix") if excluded else None
            ), None
        if bound:  # a default-tenant prefix holds no '~' id: the caller's exclusion fits
            return excluded or None, None
        return "~", (None if not excluded or excluded.startswith("~") else excluded)

    def session_id(self, principal: Principal, value: str) -> str:
        """The stored id of a session the principal may touch (NotFound otherwise)."""
        if principal.session_id is not None and value != principal.session_id:
            raise NotFound(f"session {value!r} not found")
        return self.store_id(principal, value, "session id")

    def own_id(self, principal: Principal, stored: str) -> str | None:
        """The caller's spelling of a stored id, or None when it is another tenant's."""
        if _is_default(principal):
            return None if self.shared and stored.startswith("~") else stored
        prefix = f"~{principal.tenant}~"
        return stored[len(prefix) :] if stored.startswith(prefix) else None

    # -- records --------------------------------------------------------------------
    def inward(self, principal: Principal, obj: M) -> M:
        """``obj`` with its ids as the store keeps them for this principal."""
        if self.plain(principal):
            return obj
        names = _ID_FIELDS[type(obj)]
        if type(obj) is MemoryItem:
            if principal.session_id is not None:
                raise NotFound("memories are not reachable with a session token")
        elif type(obj) is not Span:
            self.session_id(principal, getattr(obj, names[0]))
        elif principal.session_id is not None and obj.session_id != principal.session_id:
            raise NotFound(f"session {obj.session_id!r} not found")
        changes: dict[str, Any] = {
            name: self.store_id(principal, getattr(obj, name), name)
            for name in names
            if getattr(obj, name) is not None
        }
        return dataclasses.replace(obj, **changes)

    def outward(self, principal: Principal, obj: M) -> M | None:
        """``obj`` as the principal knows it, or None when it is not the principal's."""
        if self.plain(principal):
            return obj
        names = _ID_FIELDS[type(obj)]
        changes: dict[str, Any] = {}
        for name in names:
            stored = getattr(obj, name)
            if stored is None:
                continue
            mine = self.own_id(principal, stored)
            if mine is None:
                return None
            changes[name] = mine
        if names[0] not in changes:
            return None
        found = dataclasses.replace(obj, **changes)
        if principal.session_id is not None:
            if isinstance(found, MemoryItem):
                return None
            session = found.id if isinstance(found, SessionInfo) else found.session_id
            if session != principal.session_id:
                return None
        return found

    def visible(self, principal: Principal, obj: M, what: str) -> M:
        """``outward`` for a record asked for by id: another's is NotFound."""
        found = self.outward(principal, obj)
        if found is None:
            raise NotFound(f"{what} not found")
        return found

    # -- state scopes ---------------------------------------------------------------
    def scope(self, principal: Principal, scope: str) -> str:
        if _reserved(scope):  # serversec: the API keys live there
            raise NotFound(f"state scope {scope!r} not found")
        if principal.session_id is not None and scope != f"session:{principal.session_id}":
            raise NotFound(f"state scope {scope!r} not found")
        if _is_default(principal):
            if self.shared and scope.startswith("tenant:"):
                raise ValidationError("scopes starting with 'tenant:' are reserved")
            return scope
        stored = f"tenant:{principal.tenant}:{scope}"
        if len(stored) > MAX_SCOPE_LENGTH:
            raise ValidationError(f"scope is too long for tenant {principal.tenant!r}")
        return stored

    def own_scope(self, principal: Principal, stored: str) -> str | None:
        if _reserved(stored):
            return None
        if _is_default(principal):
            mine: str | None = None if self.shared and stored.startswith("tenant:") else stored
        else:
            prefix = f"tenant:{principal.tenant}:"
            mine = stored[len(prefix) :] if stored.startswith(prefix) else None
        if mine is not None and principal.session_id is not None:
            return mine if mine == f"session:{principal.session_id}" else None
        return mine

    def entry_out(self, principal: Principal, entry: StateEntry) -> StateEntry | None:
        if _reserved(entry.scope):  # the API keys: no caller lists them, keys or not
            return None
        if self.plain(principal):
            return entry
        scope = self.own_scope(principal, entry.scope)
        return None if scope is None else dataclasses.replace(entry, scope=scope)

    def entry_in(self, principal: Principal, entry: StateEntry) -> StateEntry:
        if _reserved(entry.scope):
            raise NotFound(f"state scope {entry.scope!r} not found")
        if self.plain(principal):
            return entry
        return dataclasses.replace(entry, scope=self.scope(principal, entry.scope))

    def list_prefix(self, principal: Principal) -> str | None:
        """The stored scope prefix that holds all of this principal's state, if any."""
        if principal.session_id is not None:
            return self.scope(principal, f"session:{principal.session_id}")
        return None if _is_default(principal) else f"tenant:{principal.tenant}:"


_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"  # a tenant name (keys.check_tenant)
_STORED = re.compile(rf"(^|[\s'\"(\[/=,])(?:~{_NAME}~|tenant:{_NAME}:)")
"""A namespace prefix at the start of an id or scope in a message (one per id: the id the
tenant sent may itself start with something like it)."""


def public_text(principal: Principal, text: str) -> str:
    """``text`` (an error's message) with the store's namespace prefixes taken off, so a
    tenant's error names only the ids and scopes it sent."""
    if _is_default(principal):
        return text  # its ids are stored as sent
    return _STORED.sub(r"\1", text)


def _reserved(scope: str) -> bool:
    return scope == RESERVED_SCOPE or scope.startswith(RESERVED_SCOPE + ":")


def _is_default(principal: Principal) -> bool:
    return principal.tenant == DEFAULT_TENANT


__all__ = ["DEFAULT_TENANT", "Tenancy", "public_text"]
