"""Helpers for tests that start private servers of their own (never the shared ones)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    probe: Callable[[], object], errors: tuple[type[BaseException], ...], timeout: float = 10
) -> None:
    """Call ``probe`` until it stops raising one of ``errors``; re-raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except errors:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling interval, not synchronisation
