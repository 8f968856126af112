"""Argument checks the repositories share: counts, times, free text, filters, runs, TTLs.

Everything a caller passes is checked here, before any store sees it, so a bad argument
is a ValidationError with the argument's name on every backend alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..errors import ValidationError
from ..model import Run, utcnow
from ..validation import INT_MAX, check_id, check_int, check_metadata, check_text, check_ttl

TTL = float | timedelta | None


def expiry(ttl: TTL) -> datetime | None:
    """Turn a TTL (seconds or timedelta) into an absolute expiry."""
    if ttl is None:
        return None
    return utcnow() + timedelta(seconds=check_ttl(ttl))


def check_limit(
    limit: int | None,
    what: str = "limit",
    minimum: int = 0,
    maximum: int = INT_MAX,
    *,
    optional: bool = True,
) -> None:
    """Counts and seq bounds are ints (never bools) in ``minimum``..``maximum``, or None."""
    if limit is not None or not optional:
        check_int(limit, what, minimum, maximum)


def check_opt_id(value: str | None, what: str) -> str | None:
    return None if value is None else check_id(value, what)


def check_free_text(value: object, what: str, *, optional: bool = True) -> None:
    """Free text (titles, labels, statuses): a str without lone surrogates."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, not {type(value).__name__}")
    check_text(value, what)


def check_time(value: object, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{what} must be a timezone-aware datetime, not {value!r}")


def check_filters(filters: dict[str, Any]) -> None:
    for name in ("user_id", "agent", "parent_id"):
        check_opt_id(filters.get(name), name.replace("_", " "))
    for name in ("updated_after", "updated_before"):
        check_time(filters.get(name), name)


def check_prefix(prefix: object) -> None:
    """A key prefix follows the key rules, except that it may be empty."""
    if not isinstance(prefix, str):
        raise ValidationError(f"prefix must be a string, not {type(prefix).__name__}")
    if prefix:
        check_id(prefix, "prefix")


def check_run(run: object) -> None:
    """Every field of a caller-built Run, as ``start``/``end`` would have checked it."""
    if not isinstance(run, Run):
        raise ValidationError(f"expected a Run, not {type(run).__name__}")
    check_id(run.session_id)
    check_id(run.id, "run id")
    check_free_text(run.model, "model")
    check_free_text(run.status, "status", optional=False)
    check_free_text(run.error, "error")
    check_limit(run.input_tokens, "input_tokens", maximum=INT_MAX)
    check_limit(run.output_tokens, "output_tokens", maximum=INT_MAX)
    for name in ("started_at", "ended_at"):
        check_time(getattr(run, name), name)
    if run.started_at is None:
        raise ValidationError("started_at must be a timezone-aware datetime")
    run.metadata = check_metadata(run.metadata)
