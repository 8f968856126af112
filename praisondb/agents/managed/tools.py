"""Custom tools run in this process: checking handlers, running one safely, reading results."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import ConfigError
from ...urls import redact_text
from .config import ManagedConfig

log = logging.getLogger("praisondb.agents")
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")

ToolResult = str | Sequence[Mapping[str, Any]]
"""What a handler returns: text, or a list of ``{"type": "text", "text": ...}`` blocks."""
ToolHandler = Callable[[dict[str, Any]], ToolResult]
"""Runs one custom tool call: gets the call's input, returns its result."""


def check_handlers(
    config: ManagedConfig, handlers: Mapping[str, ToolHandler]
) -> dict[str, ToolHandler]:
    """Every declared custom tool has a callable handler, and every handler a tool."""
    declared = [t.name for t in config.custom_tools]
    missing = [n for n in declared if n not in handlers]
    if missing:
        raise ConfigError(
            f"custom tools {missing} are declared in ManagedConfig.tools but have no handler: "
            f"pass tool_handlers={{{missing[0]!r}: function, ...}}"
        )
    extra = sorted(set(handlers) - set(declared))
    if extra:
        raise ConfigError(
            f"tool_handlers names tools {extra} that ManagedConfig.tools does not declare: "
            "add CustomTool(name=..., description=..., input_schema=...) for each"
        )
    wrong = sorted(n for n, fn in handlers.items() if not callable(fn))
    if wrong:
        raise ConfigError(f"tool_handlers for {wrong} are not callable")
    return dict(handlers)


def run_handler(
    handler: ToolHandler, name: str, args: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """(content blocks, is_error): a failing handler becomes an error result, never a crash."""
    try:
        result = handler(dict(args))
    except Exception as exc:  # noqa: BLE001 - the model is told, the turn goes on
        log.warning("custom tool %r failed: %s", name, type(exc).__name__)
        return [text_block(scrub(f"{type(exc).__name__}: {exc}"))], True
    blocks = result_blocks(result)
    if blocks is None:
        return [
            text_block(
                f"TypeError: the handler for {name!r} returned {type(result).__name__}; "
                "return a str or a list of text blocks"
            )
        ], True
    return blocks, False


def scrub(text: str) -> str:
    """``text`` with the secrets of every URL in it redacted (it is sent to the model)."""
    return redact_text(text, *URL_IN_TEXT.findall(text))


def results_in(history: Sequence[Any]) -> dict[str, str]:
    """Custom tool use id -> id of the ``user.custom_tool_result`` answering it."""
    return {
        str(event.custom_tool_use_id): str(event.id)
        for event in history
        if getattr(event, "type", None) == "user.custom_tool_result"
    }


def result_blocks(result: object) -> list[dict[str, Any]] | None:
    if isinstance(result, str):
        return [text_block(result)] if result else []
    if isinstance(result, Sequence) and not isinstance(result, (bytes, bytearray)):
        blocks = []
        for block in result:
            if not (
                isinstance(block, Mapping)
                and block.get("type") == "text"
                and isinstance(block.get("text"), str)
            ):
                return None
            blocks.append(text_block(block["text"]))
        return blocks
    return None


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}
