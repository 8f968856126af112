"""Who is calling. This is the minimal form the routes need; the ``serversec`` work
extends it (API keys, tenants, session tokens, the middleware that sets the principal).

Without an authenticator every request is :data:`ANONYMOUS`: the ``default`` tenant with
no key and no session restriction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starlette.requests import Request


@dataclass(frozen=True)
class Principal:
    """The caller: its tenant, the key it used, and the one session a signed session
    token limits it to (None: any session of the tenant)."""

    tenant: str = "default"
    key_id: str | None = None
    session_id: str | None = None


ANONYMOUS = Principal()


class Authenticator(Protocol):
    """Turns a request into a :class:`Principal` (defined fully by the auth layer)."""

    def authenticate(self, request: Any) -> Principal: ...


def principal_of(request: Request) -> Principal:
    """The principal the auth middleware put on the request (ANONYMOUS when none did)."""
    found = request.scope.get("praisondb.principal")
    return found if isinstance(found, Principal) else ANONYMOUS


__all__ = ["ANONYMOUS", "Authenticator", "Principal", "principal_of"]
