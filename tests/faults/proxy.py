"""A TCP proxy that injects network faults between a store and its server.

``FaultProxy(target_host, target_port)`` listens on 127.0.0.1 (a free port) and forwards
every connection to the target, two threads per connection. A test arms one fault at a
time, at run time; each fault fires once where it says so, and :attr:`FaultProxy.injected`
counts what really fired:

- ``drop_reply(match, after=n, times=k)``: the next request whose bytes contain ``match``
  (any request without one; a tuple of bytes: any of them), after skipping ``n`` such
  requests, reaches the server; the server's reply to it is swallowed and both
  connections are cut. The write happened, the client never hears of it. With ``times``,
  the next ``k`` matching requests meet that fate (enough to outlast a client's retries).
- ``reset(match, after=n)``: the connection carrying the next matching request is reset (RST)
  before the request is forwarded; without ``match``, every open connection is reset now.
- ``delay(seconds)``: every chunk, both ways, is held back that long until ``heal``.
- ``blackhole()``: connections are accepted and read, but nothing is forwarded or answered
  until ``heal``.
- ``stop()``: the server is gone as the client sees it: every open connection is reset
  and new ones are reset as soon as they are accepted, until ``heal``.
- ``heal()``: disarm everything; later traffic flows normally.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from types import TracebackType

_CHUNK = 65536


def _rst(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer gets a RST rather than a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)  # wakes a blocked recv without sending a FIN
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv on it
    with contextlib.suppress(OSError):
        sock.close()


Match = bytes | tuple[bytes, ...]
"""Request bytes to look for; a tuple matches any of its members."""


def _hit(match: Match, tail: bytes, data: bytes) -> bool:
    """``match`` ends inside ``data`` (it may start in the previous chunk's ``tail``)."""
    if isinstance(match, tuple):
        return any(_hit(m, tail, data) for m in match)
    return match in tail[max(0, len(tail) - len(match) + 1) :] + data


class _Link:
    """One client connection and its connection to the server."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.dropping = False  # the next reply from the server is swallowed
        self.tail = b""  # the end of the last request chunk, for matches across chunks
        self.closed = False
        self._cut_lock = threading.Lock()

    def start(self) -> None:
        for target in (self._upstream, self._downstream):
            threading.Thread(target=target, daemon=True, name="fault-proxy-pump").start()

    def cut(self, *, reset: bool) -> None:
        """Close both sides once; the first caller decides between FIN and RST."""
        with self._cut_lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.server):
            (_rst if reset else _close)(sock)
        self.proxy._forget(self)

    def _upstream(self) -> None:
        """Client to server: where requests are matched."""
        try:
            while not self.closed:
                data = self.client.recv(_CHUNK)
                if not data:
                    break
                action = self.proxy._on_request(self, data)
                if action == "reset":
                    self.cut(reset=True)
                    return
                if action == "swallow":
                    continue
                self.server.sendall(data)
        except OSError:
            pass
        self.cut(reset=False)

    def _downstream(self) -> None:
        """Server to client: where replies are swallowed."""
        try:
            while not self.closed:
                data = self.server.recv(_CHUNK)
                if not data:
                    break
                if self.dropping:
                    self.proxy._count("drop_reply")
                    self.cut(reset=False)
                    return
                if not self.proxy._on_reply():
                    continue
                self.client.sendall(data)
        except OSError:
            pass
        self.cut(reset=False)


class FaultProxy:
    """See the module docstring. Use as a context manager, or call :meth:`close`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._drop: Match | None = None
        self._drop_armed = False
        self._drop_skip = 0
        self._drop_left = 0
        self._reset: Match | None = None
        self._reset_skip = 0
        self._delay = 0.0
        self._blackhole = False
        self._stopped = False
        self.injected: Counter[str] = Counter()
        """How often each fault really fired (a delay counts once per delayed chunk)."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="fault-proxy")
        self._acceptor.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- faults, armed by the test -------------------------------------------------------
    def drop_reply(self, match: Match | None = None, *, after: int = 0, times: int = 1) -> None:
        with self._lock:
            self._drop, self._drop_armed, self._drop_skip = match, True, after
            self._drop_left = times

    def reset(self, match: Match | None = None, *, after: int = 0) -> None:
        if match is not None:
            with self._lock:
                self._reset, self._reset_skip = match, after
            return
        with self._lock:
            links = list(self._links)
        for link in links:
            link.cut(reset=True)
        if links:
            self._count("reset")

    def delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    def blackhole(self) -> None:
        with self._lock:
            self._blackhole = True

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self.reset()
        self._count("stop")

    def heal(self) -> None:
        with self._lock:
            self._drop, self._drop_armed, self._reset = None, False, None
            self._delay, self._blackhole, self._stopped = 0.0, False, False

    @property
    def armed(self) -> bool:
        """True while a one-shot fault (drop_reply, reset with a match) has not fired."""
        with self._lock:
            return self._drop_armed or self._reset is not None

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        with self._lock:
            links = list(self._links)
        for link in links:
            link.cut(reset=False)
        self._acceptor.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------
    def _count(self, fault: str) -> None:
        with self._lock:
            self.injected[fault] += 1

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                stopped = self._stopped
            if stopped:
                _rst(client)
                self._count("refused")
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _rst(client)
                continue
            server.settimeout(None)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, server)
            with self._lock:
                self._links.add(link)
            link.start()

    def _on_request(self, link: _Link, data: bytes) -> str:
        """Decide a request chunk's fate: "forward", "swallow" or "reset"."""
        tail, link.tail = link.tail, (link.tail + data)[-256:]
        with self._lock:
            blackhole, delay = self._blackhole, self._delay
            if self._reset is not None and _hit(self._reset, tail, data):
                if self._reset_skip:
                    self._reset_skip -= 1
                else:
                    self._reset = None
                    self.injected["reset"] += 1
                    return "reset"
            if (
                not blackhole
                and self._drop_armed
                and (self._drop is None or _hit(self._drop, tail, data))
            ):
                if self._drop_skip:
                    self._drop_skip -= 1
                else:
                    self._drop_left -= 1
                    if self._drop_left <= 0:
                        self._drop, self._drop_armed = None, False
                    link.dropping = True
        if blackhole:
            self._count("blackhole")
            return "swallow"
        self._pause(delay)
        return "forward"

    def _on_reply(self) -> bool:
        """False: swallow this reply chunk (black hole); True: forward it, after any delay."""
        with self._lock:
            blackhole, delay = self._blackhole, self._delay
        if blackhole:
            return False
        self._pause(delay)
        return True

    def _pause(self, delay: float) -> None:
        if delay > 0:
            self._count("delay")
            time.sleep(delay)  # the injected fault itself


__all__ = ["FaultProxy"]
