"""HTTP to a ``praisondb serve`` server: pooled connections, timeouts, retries, typed errors.

One :class:`Transport` per store, over ``httpx.Client`` or, for the async face
(``io="async"``), ``httpx.AsyncClient`` driven from the core's greenlets (see
:mod:`praisondb.aio.awaiting`): one implementation of the store for both faces.

Retry rules (the project's, :mod:`praisondb.retry`): a request that never reached the
server (connection refused or reset while connecting, pool timeout) is re-sent whatever
it is; one whose reply was lost is re-sent only when ``resend`` says it is safe (reads,
PUTs, DELETEs, and appends and state writes, which carry ids or write tokens the server
recognises). The API key travels as ``Authorization: Bearer`` and never appears in an
error, a log line or a repr.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator, Iterator, Mapping
from typing import Any

import httpx
import orjson

from ... import clock
from ...errors import BackendUnavailable, ConfigError, PraisonDBError, ValidationError
from ...options import (
    AUTO_MIGRATE,
    RETRY_ATTEMPTS,
    Option,
    OptionTable,
    as_float,
    as_int,
    as_text,
    at_least,
    positive,
)
from ...retry import Retry
from ...server.wire import CLOCK_HEADER, NDJSON, error_from
from ...urls import StoreURL

log = logging.getLogger("praisondb.stores.http")
API_KEY_ENV = "PRAISONDB_API_KEY"

OPTIONS = OptionTable(
    AUTO_MIGRATE,
    RETRY_ATTEMPTS,
    Option("api_key", as_text, doc=f"sent as Authorization: Bearer (default: ${API_KEY_ENV})"),
    Option("timeout", as_float, 30.0, positive, "must be > 0", "seconds per request"),
    Option("connect_timeout", as_float, 5.0, positive, "must be > 0", "seconds to connect"),
    Option(
        "max_connections", as_int, 100, at_least(1), "must be >= 1", "pooled connections at most"
    ),
)

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""The request never reached the server: re-sending it is always safe."""
_LOST = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
"""The request may have reached the server and its reply was lost."""


class Transport:
    def __init__(self, url: StoreURL, options: Mapping[str, Any], io: str) -> None:
        if io not in ("sync", "async"):
            raise ConfigError(f"io must be 'sync' or 'async', not {io!r}")
        values = OPTIONS.read(url, options)
        self.shown = url.redacted
        self._io = io
        self._retry = Retry(attempts=values["retry_attempts"])
        scheme = "https" if url.scheme == "praisondb+https" else "http"
        rest = url.secret.split("://", 1)[1].split("?", 1)[0]
        key = values.get("api_key") or os.environ.get(API_KEY_ENV) or None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        settings: dict[str, Any] = {
            "base_url": f"{scheme}://{rest.rstrip('/')}",
            "headers": headers,
            "timeout": httpx.Timeout(values["timeout"], connect=values["connect_timeout"]),
            "limits": httpx.Limits(
                max_connections=values["max_connections"],
                max_keepalive_connections=values["max_connections"],
            ),
            "follow_redirects": False,
        }
        self._client: Any = (
            httpx.AsyncClient(**settings) if io == "async" else httpx.Client(**settings)
        )
        self.resent = False
        """Whether the last request was sent more than once (its first reply was lost)."""

    def __repr__(self) -> str:
        return f"Transport({self.shown!r})"

    # -- one request --------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        resend: bool = True,
        ok: tuple[int, ...] = (),
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send; retry what may be retried; raise the server's typed error for a 4xx/5xx
        (a status in ``ok`` is returned instead). ``content``: a JSON body already encoded."""
        if body is not None:
            content = orjson.dumps(body)
        extra = dict(headers or {})
        if content is not None:
            extra["Content-Type"] = "application/json"
        response = self._send(method, path, content, params, extra, resend, stream=False)
        if response.status_code >= 400 and response.status_code not in ok:
            raise self._error(response)
        return response

    def lines(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Generator[bytes, None, None]:
        """The NDJSON lines of a streamed GET, read as they arrive."""
        response = self._send("GET", path, None, params, {"Accept": NDJSON}, True, stream=True)
        try:
            if response.status_code >= 400:
                self._read(response)
                raise self._error(response)
            yield from self._iter_lines(response)
        except httpx.TransportError as exc:
            raise self._unavailable(exc, 1, "the stream broke off") from exc
        finally:
            self._close(response)

    def close(self) -> None:
        if self._io == "async":
            from ...aio.awaiting import wait

            wait(self._client.aclose())
        else:
            self._client.close()

    # -- internals ----------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
        resend: bool,
        *,
        stream: bool,
    ) -> httpx.Response:
        failures = 0
        started = time.monotonic()
        self.resent = False
        query = {k: v for k, v in (params or {}).items() if v is not None}
        while True:
            headers[CLOCK_HEADER] = str(clock.time_ns())
            try:
                try:
                    request = self._client.build_request(
                        method, path, content=content, params=query, headers=headers
                    )
                except UnicodeEncodeError as exc:  # a lone surrogate in a query value
                    raise ValidationError(
                        f"a request argument is not valid Unicode text ({exc.reason})"
                    ) from None
                return self._dispatch(request, stream)
            except httpx.TransportError as exc:
                lost = isinstance(exc, _LOST)
                if (lost and not resend) or not isinstance(exc, _NOT_SENT + _LOST):
                    raise self._unavailable(exc, failures + 1, None) from exc
                failures += 1
                if failures >= self._retry.attempts:
                    raise self._unavailable(
                        exc, failures, None, time.monotonic() - started
                    ) from exc
                self.resent = self.resent or lost
                delay = self._retry.backoff(failures)
                log.warning(
                    "%s to %s failed (%s); retry %d in %.2fs",
                    method,
                    self.shown,
                    type(exc).__name__,
                    failures,
                    delay,
                )
                clock.pause(delay)

    def _dispatch(self, request: httpx.Request, stream: bool) -> httpx.Response:
        if self._io == "sync":
            response: httpx.Response = self._client.send(request, stream=stream)
            return response
        from ...aio.awaiting import wait

        if stream:  # a read: cancelling it mid-way changes nothing on the server
            response = wait(self._client.send(request, stream=True))
            return response
        return settled(self._client.send(request))

    def _iter_lines(self, response: httpx.Response) -> Iterator[bytes]:
        """Lines split on b"\\n" only: httpx's text lines also break at U+2028, U+0085
        and the like, which JSON strings may hold unescaped."""
        pending = b""
        for chunk in self._iter_bytes(response):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from (line for line in lines if line)
        if pending:
            yield pending

    def _iter_bytes(self, response: httpx.Response) -> Iterator[bytes]:
        if self._io == "sync":
            yield from response.iter_bytes()
            return
        from ...aio.awaiting import wait

        chunks = response.aiter_bytes()
        while True:
            try:
                yield wait(chunks.__anext__())
            except StopAsyncIteration:
                return

    def _read(self, response: httpx.Response) -> None:
        if self._io == "sync":
            response.read()
        else:
            from ...aio.awaiting import wait

            wait(response.aread())

    def _close(self, response: httpx.Response) -> None:
        if self._io == "sync":
            response.close()
        else:
            from ...aio.awaiting import wait

            wait(response.aclose())

    def _error(self, response: httpx.Response) -> PraisonDBError:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        return error_from(body, response.status_code, self.shown)

    def _unavailable(
        self,
        exc: httpx.TransportError,
        attempts: int,
        what: str | None,
        waited: float | None = None,
    ) -> BackendUnavailable:
        kind = type(exc).__name__
        reason = what or f"cannot reach the praisondb server ({kind})"
        return BackendUnavailable(
            f"{reason}; check that `praisondb serve` is running there and the URL's host "
            "and port are right",
            url=self.shown,
            attempts=attempts,
            waited=waited,
        )


def settled(sending: Any) -> httpx.Response:
    """The reply of a request sent from the core's greenlet, the request carried through
    to its end even when the caller is cancelled meanwhile: the server goes on with a
    request it has received, so a cancelled write must not let the cancellation through
    before it has landed (or failed), or the write would land after the caller moved on.
    The cancellation goes on once the reply is in (bounded by the request's timeout), as
    the async face's thread bridge does for a call already running on a thread."""
    import asyncio

    from ...aio.awaiting import wait

    task = asyncio.ensure_future(sending)
    cancelled: BaseException | None = None
    while not task.done():
        try:
            wait(asyncio.shield(task))
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc  # the caller's: wait for the reply first
        except BaseException:  # noqa: BLE001 - the request's own failure, raised below
            break
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller sees
        raise cancelled
    response: httpx.Response = task.result()
    return response


__all__ = ["API_KEY_ENV", "OPTIONS", "Transport", "settled"]
