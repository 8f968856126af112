"""The fault proxy itself, against a tiny echo server that counts what it received."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.faults.proxy import FaultProxy
from tests.waiting import eventually


class EchoServer:
    """Answers every chunk with ``ok:<chunk>``; remembers every chunk it got."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                self.received.append(data)
                conn.sendall(b"ok:" + data)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.port) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def ask(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    eventually(condition, timeout)


def test_forwards_both_ways(proxy: FaultProxy, echo: EchoServer) -> None:
    with connect(proxy) as sock:
        assert ask(sock, b"hello") == b"ok:hello"
        assert ask(sock, b"again") == b"ok:again"
    assert echo.received == [b"hello", b"again"]
    assert not proxy.injected


def test_drop_reply_delivers_the_request_and_cuts_the_client(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    with connect(proxy) as sock:
        assert ask(sock, b"first") == b"ok:first"
        proxy.drop_reply(match=b"COMMIT")
        assert ask(sock, b"select") == b"ok:select"  # not matched: answered
        sock.sendall(b"COMMIT now")
        assert sock.recv(4096) == b""  # the reply never comes; the connection is cut
    assert echo.received[-1] == b"COMMIT now"  # but the server got the request
    assert proxy.injected == {"drop_reply": 1}
    assert not proxy.armed
    with connect(proxy) as sock:  # one shot: the next connection works
        assert ask(sock, b"COMMIT again") == b"ok:COMMIT again"


def test_drop_reply_after_skips_that_many_matches(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.drop_reply(match=b"W", after=2)
    with connect(proxy) as sock:
        assert ask(sock, b"W1") == b"ok:W1"
        assert ask(sock, b"R") == b"ok:R"
        assert ask(sock, b"W2") == b"ok:W2"
        sock.sendall(b"W3")
        assert sock.recv(4096) == b""
    assert echo.received == [b"W1", b"R", b"W2", b"W3"]
    assert proxy.injected == {"drop_reply": 1}


def test_reset_after_skips_that_many_matches(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.reset(match=b"W", after=1)
    with connect(proxy) as sock:
        assert ask(sock, b"W1") == b"ok:W1"
        sock.sendall(b"W2")
        with pytest.raises(ConnectionResetError):
            sock.recv(4096)
    assert echo.received == [b"W1"]


def test_drop_reply_times_drops_that_many_replies(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.drop_reply(match=b"W", times=2)
    for request in (b"W1", b"W2"):
        with connect(proxy) as sock:
            sock.sendall(request)
            assert sock.recv(4096) == b""
    assert not proxy.armed
    with connect(proxy) as sock:
        assert ask(sock, b"W3") == b"ok:W3"
    assert echo.received == [b"W1", b"W2", b"W3"]
    assert proxy.injected == {"drop_reply": 2}


def test_drop_reply_matches_any_of_a_tuple(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.drop_reply(match=(b"insert", b"update"))
    with connect(proxy) as sock:
        assert ask(sock, b"find") == b"ok:find"
        sock.sendall(b"update x")
        assert sock.recv(4096) == b""
    assert proxy.injected == {"drop_reply": 1}


def test_drop_reply_matches_across_chunks(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.drop_reply(match=b"COMMIT")
    with connect(proxy) as sock:
        assert ask(sock, b"xxCOM") == b"ok:xxCOM"
        sock.sendall(b"MITyy")
        assert sock.recv(4096) == b""
    assert proxy.injected["drop_reply"] == 1


def test_drop_reply_without_match_takes_the_next_request(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    proxy.drop_reply()
    with connect(proxy) as sock:
        sock.sendall(b"anything")
        assert sock.recv(4096) == b""
    assert echo.received == [b"anything"]


def test_reset_now_resets_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert ask(sock, b"a") == b"ok:a"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            sock.recv(4096)  # the RST arrives
    assert proxy.injected == {"reset": 1}
    with connect(proxy) as sock:
        assert ask(sock, b"c") == b"ok:c"


def test_reset_on_match_never_delivers_the_request(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.reset(match=b"INSERT")
    with connect(proxy) as sock:
        assert ask(sock, b"SELECT") == b"ok:SELECT"
        sock.sendall(b"INSERT x")
        with pytest.raises(ConnectionResetError):
            sock.recv(4096)
    assert echo.received == [b"SELECT"]
    assert proxy.injected == {"reset": 1}


def test_delay_holds_traffic_until_healed(proxy: FaultProxy) -> None:
    proxy.delay(0.2)
    with connect(proxy) as sock:
        started = time.monotonic()
        assert ask(sock, b"slow") == b"ok:slow"
        assert time.monotonic() - started >= 0.35  # held both ways
        proxy.heal()
        started = time.monotonic()
        assert ask(sock, b"fast") == b"ok:fast"
        assert time.monotonic() - started < 0.2
    assert proxy.injected["delay"] == 2


def test_blackhole_reads_but_never_answers(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.blackhole()
    with connect(proxy) as sock:
        sock.settimeout(0.3)
        sock.sendall(b"lost")
        with pytest.raises(socket.timeout):
            sock.recv(4096)
        proxy.heal()
        sock.settimeout(5)
        assert ask(sock, b"back") == b"ok:back"
    assert echo.received == [b"back"]
    assert proxy.injected["blackhole"] == 1


def test_stop_resets_open_and_new_connections_until_healed(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    with connect(proxy) as sock:
        assert ask(sock, b"a") == b"ok:a"
        proxy.stop()
        with pytest.raises(ConnectionResetError):
            sock.recv(4096)  # the open connection is reset
    with pytest.raises(ConnectionResetError), connect(proxy) as sock:
        sock.recv(4096)  # a new one is reset as soon as it is accepted
    proxy.heal()
    with connect(proxy) as sock:
        assert ask(sock, b"back") == b"ok:back"
    assert echo.received == [b"a", b"back"]
    assert proxy.injected == {"stop": 1, "reset": 1, "refused": 1}


def test_an_unreachable_target_resets_the_client() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        with (
            FaultProxy("127.0.0.1", port) as proxy,
            pytest.raises(ConnectionResetError),  # the RST may even beat connect's return
            connect(proxy) as sock,
        ):
            sock.recv(4096)


def test_close_ends_every_connection(echo: EchoServer) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port)
    sock = connect(proxy)
    assert ask(sock, b"a") == b"ok:a"
    proxy.close()
    wait_for(lambda: sock.recv(4096) == b"")
    sock.close()
