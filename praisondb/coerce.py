"""What agent frameworks hand us, made into JSON data before it is stored.

Framework objects (tool arguments, results, SDK models) are not ours to reject: the
adapters store them as faithfully as JSON allows instead of failing the agent's turn.
"""

from __future__ import annotations

from typing import Any

import orjson

from .validation import coerce_json


def json_safe(value: Any) -> Any:
    """``value`` as JSON data every store keeps; what JSON cannot hold becomes text."""
    return coerce_json(value)


def as_text(value: Any) -> str:
    """Tool results as message text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(json_safe(value)).decode()
