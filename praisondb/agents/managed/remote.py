"""The remote side's vocabulary: which SDK errors are worth retrying, their text, the
shape of cached remote ids, and the transcript replayed into a new remote session."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ...errors import ConfigError, NotFound, ValidationError
from ...model import Message
from ...retry import Retry

T = TypeVar("T")

TRANSCRIPT_HEADER = (
    "Conversation so far (restored from storage because the previous remote session "
    "is gone; continue from here):"
)


def transcript(messages: Sequence[Message]) -> str:
    """Stored history as one text block: ``[user] ...`` / ``[assistant] ...`` paragraphs."""
    lines = [TRANSCRIPT_HEADER, ""]
    for message in messages:
        content = message.content
        text = (
            content
            if isinstance(content, str)
            else " ".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
        )
        if text:
            lines.extend([f"[{message.role}] {text}", ""])
    return "\n".join(lines).rstrip()


def describe(remote: Any, missing_id: str | None = None) -> dict[str, Any]:
    """What ``ManagedAgent.retrieve_session`` returns for a retrieved remote session, for
    none yet (status ``"none"``), or for one that is gone (``missing_id``, ``"missing"``)."""
    if remote is None:
        status = "none" if missing_id is None else "missing"
        empty = {"input_tokens": 0, "output_tokens": 0}
        return {"id": missing_id, "status": status, "title": None, "usage": empty}
    usage = remote.usage
    return {
        "id": remote.id,
        "status": remote.status,
        "title": remote.title,
        "usage": {
            "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
            "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
        },
    }


def valid_ids(stored: Any) -> bool:
    return (
        isinstance(stored, dict)
        and isinstance(stored.get("agent_id"), str)
        and isinstance(stored.get("environment_id"), str)
    )


def transient(exc: BaseException) -> bool:
    """Worth retrying: rate limits, server errors, dropped or timed-out connections."""
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError))


def error_text(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))[:300]
    return str(exc)[:300]


def call_api(retry: Retry, base_url: str, action: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` under ``retry``; the API's refusals become praisondb errors with the fix."""
    import anthropic

    try:
        return retry.call(fn, transient=transient, url=base_url, action=action)
    except anthropic.AuthenticationError as exc:
        raise ConfigError(
            f"Anthropic rejected the API key while trying to {action} (401): check "
            "api_key / ANTHROPIC_API_KEY"
        ) from exc
    except anthropic.PermissionDeniedError as exc:
        raise ConfigError(f"this API key may not {action} (403): {error_text(exc)}") from exc
    except anthropic.NotFoundError as exc:
        raise NotFound(f"{action}: {error_text(exc)}") from exc
    except anthropic.APIStatusError as exc:
        raise ValidationError(f"{action} failed ({exc.status_code}): {error_text(exc)}") from exc
