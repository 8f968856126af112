"""``RemoteSession``: talk to an agent that ``praisondb serve --agent`` mounts.

The conversation lives on the server (in its store, under the API key's tenant), so any
process that knows the agent URL, the session id and a key can resume it::

    with RemoteSession(agent_url="http://agents:8787/agents/support",
                       session_id="ticket-42", api_key=key) as s:
        s.chat("my order is late")
        s.history(last=10)

``AsyncRemoteSession`` is the same class awaited (the project's face mechanism, on
worker threads). A chat is not re-sent after a lost reply (the agent may have run):
read :meth:`RemoteSession.history` to see whether it landed.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from .. import errors
from ..aio.bridge import ThreadBridge
from ..aio.context import Closing
from ..aio.face import Face, awaited
from ..codec import parse_message
from ..errors import (
    BackendUnavailable,
    ConfigError,
    Conflict,
    LockTimeout,
    NotFound,
    PraisonDBError,
    ValidationError,
)
from ..ids import new_id
from ..model import Message
from ..urls import redact_text
from ..validation import check_id

API_KEY_ENV = "PRAISONDB_API_KEY"
_STATUS_ERRORS: dict[int, type[PraisonDBError]] = {
    400: ValidationError,
    401: ConfigError,
    404: NotFound,
    409: Conflict,
    413: ValidationError,
    422: ValidationError,
}


class RemoteSession:
    """One conversation with a served agent: ``chat`` a message, read ``history``.

    ``session_id`` None starts a new conversation (a fresh id, see :attr:`id`);
    ``api_key`` defaults to ``$PRAISONDB_API_KEY``. The key (or a session token for this
    session) is sent as ``Authorization: Bearer``; it never appears in errors or repr."""

    def __init__(
        self,
        agent_url: str,
        session_id: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
    ) -> None:
        try:
            import httpx
        except ImportError:
            raise ConfigError(
                "RemoteSession needs httpx; pip install 'praisondb[client]'"
            ) from None
        if not isinstance(agent_url, str) or not agent_url.startswith(("http://", "https://")):
            raise ConfigError(f"agent_url {agent_url!r} must be an http:// or https:// URL")
        self.agent_url = agent_url.rstrip("/")
        self.id = new_id() if session_id is None else check_id(session_id)
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout)

    def __repr__(self) -> str:
        return f"RemoteSession({redact_text(self.agent_url)!r}, session_id={self.id!r})"

    @property
    def _base(self) -> str:
        return f"{self.agent_url}/sessions/{quote(self.id, safe='')}"

    def chat(self, message: str) -> str:
        """Send ``message`` to the agent; its reply (text blocks joined) once it is stored.

        Chats with one session take turns on the server: while another runs this one
        waits (``praisondb serve --chat-wait``, 30 s by default), then raises
        :class:`~praisondb.LockTimeout` (``.retry_after``: seconds) with nothing stored."""
        if not isinstance(message, str) or not message:
            raise ValidationError("message must be a non-empty string")
        body = self._call("POST", f"{self._base}/chat", json={"message": message})
        reply = body.get("reply")
        if isinstance(reply, list):
            texts = [b.get("text", "") for b in reply if isinstance(b, dict)]
            return "\n\n".join(t for t in texts if t)
        return str(reply)

    def history(self, last: int | None = None) -> list[Message]:
        """The conversation's messages as the server stored them (``last``: the final N)."""
        params = {} if last is None else {"last": str(last)}
        body = self._call("GET", f"{self._base}/messages", params=params)
        return [parse_message(item) for item in body.get("items", [])]

    def close(self) -> None:
        """Let go of the connection pool."""
        self._client.close()

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"cannot reach the agent server at {redact_text(self.agent_url)} "
                f"({type(exc).__name__}); check that `praisondb serve` runs there"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code < 400:
            return body
        detail = str(body.get("detail") or response.reason_phrase)
        if response.status_code == 429:
            wait = response.headers.get("Retry-After", "a few")
            raise BackendUnavailable(
                f"the server's rate limit for this key is reached; retry in {wait} s"
            )
        if response.status_code == 401:
            detail += f" (pass api_key= or set ${API_KEY_ENV})"
        kind = _STATUS_ERRORS.get(response.status_code, BackendUnavailable)
        named = getattr(errors, str(body.get("error")), None)
        if isinstance(named, type) and issubclass(named, kind) and kind is not ConfigError:
            kind = named  # the subclass the server named: LockTimeout, TokenExpired, ...
        error = kind(f"agent server {response.status_code}: {detail}")
        wait = response.headers.get("Retry-After", "")
        if isinstance(error, LockTimeout) and wait.isdigit():
            error.retry_after = int(wait)
        raise error


class AsyncRemoteSession(Face[RemoteSession], Closing):
    """:class:`RemoteSession`, awaited: the same methods, run on worker threads."""

    __slots__ = ()
    chat = awaited(RemoteSession.chat)
    history = awaited(RemoteSession.history)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The arguments of :class:`RemoteSession`."""
        super().__init__(RemoteSession(*args, **kwargs), ThreadBridge(workers=4))

    @property
    def id(self) -> str:
        return self._sync.id

    async def close(self) -> None:
        """Let go of the connection pool and the worker threads."""
        bridge = self._runner
        assert isinstance(bridge, ThreadBridge)
        await bridge.stop()
        await bridge.finish(self._sync.close)


__all__ = ["API_KEY_ENV", "AsyncRemoteSession", "RemoteSession"]
