"""Real ``praisondb serve`` processes for tests: started, waited for (``/readyz`` polled),
stopped, killed and restarted on the same address."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

import praisondb
from tests.servers import free_port

ROOT = Path(praisondb.__file__).resolve().parents[1]
READY_TIMEOUT = 60.0


class Server:
    """One ``praisondb serve`` subprocess.

    ``inherit=True`` (the conformance backend): it serves a socket this process bound and
    keeps, so the port is never raced for, and connections made while it restarts wait in
    the socket's backlog. ``inherit=False``: it binds ``port`` itself, so while it is down
    connections are refused (what a client sees when a server dies).
    """

    def __init__(
        self, database_url: str, log: Path, *, inherit: bool = True, args: tuple[str, ...] = ()
    ) -> None:
        self.database_url = database_url
        self.log = log
        self.args = args
        self._socket: socket.socket | None = None
        if inherit:
            self._socket = socket.socket()
            self._socket.bind(("127.0.0.1", 0))
            self._socket.listen(1024)
            self._socket.set_inheritable(True)
            self.port = int(self._socket.getsockname()[1])
        else:
            self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client_url(self) -> str:
        return f"praisondb+http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "praisondb", "serve", "--database-url", self.database_url]
        cmd += ["--auto-migrate", *self.args]
        fds: tuple[int, ...] = ()
        if self._socket is not None:
            cmd += ["--fd", str(self._socket.fileno())]
            fds = (self._socket.fileno(),)
        else:
            cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=out, pass_fds=fds, env=env)
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"praisondb serve exited: {self.tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/readyz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"praisondb serve not ready in {READY_TIMEOUT} s: {self.tail()}"
                    )
                time.sleep(0.02)  # the polling interval, not a synchronisation

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self, *, kill: bool = False) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._socket is not None:
            self._socket.close()


@contextlib.contextmanager
def serve(
    database_url: str, tmp: Path, *, inherit: bool = True, args: tuple[str, ...] = ()
) -> Iterator[Server]:
    server = Server(database_url, tmp / "server.log", inherit=inherit, args=args)
    try:
        server.start()
        yield server
    finally:
        server.close()
