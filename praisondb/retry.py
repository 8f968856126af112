"""Retry with exponential backoff and full jitter, as one small reusable policy."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from . import clock
from .errors import BackendUnavailable, PraisonDBError
from .urls import StoreURL, redact_text

T = TypeVar("T")
log = logging.getLogger("praisondb.retry")


@dataclass(frozen=True)
class Retry:
    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 2.0

    def backoff(self, failures: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (failures - 1)))

    def call(
        self,
        fn: Callable[[], T],
        *,
        transient: Callable[[BaseException], bool],
        url: StoreURL | str,
        action: str = "request",
    ) -> T:
        """Run ``fn``; retry transient failures; raise :class:`BackendUnavailable` at the end.

        Given a StoreURL, the driver's error text is scrubbed of its password; a plain
        string must already be redacted. Errors that are not transient pass through.
        """
        failures = 0
        started = time.monotonic()
        while True:
            try:
                return fn()
            except PraisonDBError:
                raise
            except Exception as exc:
                if not transient(exc):
                    raise
                failures += 1
                # worked out only on failure: redacting costs a store append ~2% of its time
                shown = url.redacted if isinstance(url, StoreURL) else url
                if failures >= self.attempts:
                    secrets = (url.secret,) if isinstance(url, StoreURL) else ()
                    kind, detail = type(exc).__name__, driver_text(exc, *secrets)
                    raise BackendUnavailable(
                        f"{action} failed: {kind}" + (f": {detail}" if detail != kind else ""),
                        url=shown,
                        attempts=failures,
                        waited=time.monotonic() - started,
                    ) from exc
                delay = self.backoff(failures)
                log.warning(
                    "%s on %s failed (%s); retry %d in %.2fs",
                    action,
                    shown,
                    type(exc).__name__,
                    failures,
                    delay,
                )
                clock.pause(delay)


_DUMPS = (", Topology Description: ",)
"""Where a driver's message turns into a dump of its internal state (pymongo's topology)."""


def driver_text(exc: BaseException, *secrets: str, limit: int = 300) -> str:
    """The first line of a driver's message, without state dumps, cut at a word, with
    ``secrets`` redacted; the exception's type name when it has no text. Every store
    words driver errors through this, so they read alike everywhere."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    for marker in _DUMPS:
        text = text.split(marker, 1)[0]
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return redact_text(text, *secrets) if text else type(exc).__name__


NO_RETRY = Retry(attempts=1)
