"""HTTP to a ``praisondb serve`` server: pooled connections, timeouts, retries, typed errors.

One :class:`Transport` per store, over httpcore's ``ConnectionPool`` or, for the async
face (``io="async"``), its ``AsyncConnectionPool`` driven from the core's greenlets (see
:mod:`praisondb.aio.awaiting`): one implementation of the store for both faces. httpcore
is httpx's own engine; used bare, an append spends 0.29 ms of client CPU where httpx's
URL, header and cookie models made it 0.47 ms.

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
import ssl
import time
import urllib.request
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpcore
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

_NOT_SENT = (httpcore.ConnectError, httpcore.ConnectTimeout, httpcore.PoolTimeout)
"""The request never reached the server: re-sending it is always safe."""
_LOST = (
    httpcore.ReadTimeout,
    httpcore.WriteTimeout,
    httpcore.ReadError,
    httpcore.WriteError,
    httpcore.RemoteProtocolError,
)
"""The request may have reached the server and its reply was lost."""
_FAILED = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)
"""Every way the connection itself can fail (httpcore has no common base class)."""


@dataclass
class Reply:
    """A server's answer: status, body and headers (names in lower case)."""

    status_code: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Any = None
    """The open body of a streamed reply (closed by :meth:`Transport._close`)."""


class Transport:
    def __init__(self, url: StoreURL, options: Mapping[str, Any], io: str) -> None:
        if io not in ("sync", "async"):
            raise ConfigError(f"io must be 'sync' or 'async', not {io!r}")
        values = OPTIONS.read(url, options)
        self.shown = url.redacted
        self._io = io
        self._retry = Retry(attempts=values["retry_attempts"])
        scheme = "https" if url.scheme == "praisondb+https" else "http"
        rest = url.secret.split("://", 1)[1].split("?", 1)[0].rstrip("/")
        host, _, prefix = rest.partition("/")
        host = host.rsplit("@", 1)[-1]  # userinfo never travels in a Host header
        self._base = f"{scheme}://{host}" + (f"/{prefix}" if prefix else "")
        key = values.get("api_key") or os.environ.get(API_KEY_ENV) or None
        self._headers: dict[str, str] = {"Host": host}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        timeout, connect = values["timeout"], values["connect_timeout"]
        self._timeouts = {"connect": connect, "read": timeout, "write": timeout, "pool": timeout}
        pool = httpcore.AsyncConnectionPool if io == "async" else httpcore.ConnectionPool
        self._client: Any = pool(
            max_connections=values["max_connections"],
            ssl_context=_ssl_context() if scheme == "https" else None,
            proxy=_proxy(scheme, host),
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
    ) -> Reply:
        """Send; retry what may be retried; raise the server's typed error for a 4xx/5xx
        (a status in ``ok`` is returned instead). ``content``: a JSON body already encoded."""
        if body is not None:
            content = orjson.dumps(body)
        extra = dict(headers or {})
        if content is not None:
            extra["Content-Type"] = "application/json"
        if content is not None or method in {"POST", "PUT", "PATCH"}:
            extra["Content-Length"] = str(len(content or b""))
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
        except _FAILED as exc:
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
    ) -> Reply:
        failures = 0
        started = time.monotonic()
        self.resent = False
        target = self._base + path + _query(params)
        while True:
            sent = {**self._headers, **headers, CLOCK_HEADER: str(clock.time_ns())}
            request = httpcore.Request(
                method,
                target,
                headers=list(sent.items()),
                content=content,
                extensions={"timeout": self._timeouts},
            )
            try:
                return self._dispatch(request, stream)
            except _FAILED as exc:
                if isinstance(exc.__context__, ssl.SSLCertVerificationError):
                    raise self._untrusted(exc.__context__) from None
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

    def _dispatch(self, request: httpcore.Request, stream: bool) -> Reply:
        if self._io == "sync":
            response = self._client.handle_request(request)
            if not stream:
                try:
                    response.read()
                finally:
                    response.close()
            return _reply(response, stream)
        from ...aio.awaiting import wait

        if stream:  # a read: cancelling it mid-way changes nothing on the server
            return _reply(wait(self._client.handle_async_request(request)), stream)
        return _reply(settled(self._whole(request)), stream)

    async def _whole(self, request: httpcore.Request) -> httpcore.Response:
        response: httpcore.Response = await self._client.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _iter_lines(self, response: Reply) -> Iterator[bytes]:
        """Lines split on b"\\n" only: httpx's text lines also break at U+2028, U+0085
        and the like, which JSON strings may hold unescaped."""
        pending = b""
        for chunk in self._iter_bytes(response):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from (line for line in lines if line)
        if pending:
            yield pending

    def _iter_bytes(self, response: Reply) -> Iterator[bytes]:
        if self._io == "sync":
            yield from response.stream.iter_stream()
            return
        from ...aio.awaiting import wait

        chunks = response.stream.aiter_stream()
        while True:
            try:
                yield wait(chunks.__anext__())
            except StopAsyncIteration:
                return

    def _read(self, response: Reply) -> None:
        if self._io == "sync":
            response.content = response.stream.read()
        else:
            from ...aio.awaiting import wait

            response.content = wait(response.stream.aread())

    def _close(self, response: Reply) -> None:
        if self._io == "sync":
            response.stream.close()
        else:
            from ...aio.awaiting import wait

            wait(response.stream.aclose())

    def _error(self, response: Reply) -> PraisonDBError:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        return error_from(body, response.status_code, self.shown)

    def _untrusted(self, exc: ssl.SSLCertVerificationError) -> ConfigError:
        return ConfigError(
            f"the server at {self.shown} presented a certificate this client does not trust "
            f"({exc.verify_message}); set SSL_CERT_FILE to the certificate authority that "
            "signed it, or use a certificate from a public authority"
        )

    def _unavailable(
        self,
        exc: Exception,
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


def _query(params: Mapping[str, Any] | None) -> str:
    """``?a=1&b=true`` of the values that are set (booleans as JSON writes them)."""
    if not params:
        return ""
    pairs = [
        (k, ("true" if v else "false") if isinstance(v, bool) else str(v))
        for k, v in params.items()
        if v is not None
    ]
    try:
        return "?" + urlencode(pairs) if pairs else ""
    except UnicodeEncodeError as exc:  # a lone surrogate in a query value
        raise ValidationError(
            f"a request argument is not valid Unicode text ({exc.reason})"
        ) from None


def _ssl_context() -> ssl.SSLContext:
    """Certificates as httpx finds them: ``$SSL_CERT_FILE``/``$SSL_CERT_DIR``, else certifi's."""
    import certifi

    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    return ssl.create_default_context(cafile=certifi.where())


def _proxy(scheme: str, host: str) -> httpcore.Proxy | None:
    """The proxy ``$HTTP_PROXY``/``$HTTPS_PROXY`` name for this server, unless ``$NO_PROXY``
    exempts its host (the standard library's reading of them, as httpx's)."""
    url = urllib.request.getproxies().get(scheme)
    name = host[1 : host.index("]")] if host.startswith("[") else host.split(":", 1)[0]
    if not url or urllib.request.proxy_bypass(name):
        return None
    return httpcore.Proxy(url)


def _reply(response: httpcore.Response, stream: bool) -> Reply:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
    if stream:
        return Reply(response.status, headers=headers, stream=response)
    return Reply(response.status, response.content, headers)


def settled(sending: Any) -> Any:
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
    return task.result()


__all__ = ["API_KEY_ENV", "OPTIONS", "Reply", "Transport", "settled"]
