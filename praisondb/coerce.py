"""What agent frameworks hand us, made into JSON data before it is stored.

Framework objects (tool arguments, results, SDK models) are not ours to reject: the
adapters store them as faithfully as JSON allows instead of failing the agent's turn.
"""

from __future__ import annotations

from typing import Any

import orjson


def json_safe(value: Any) -> Any:
    """``value`` as JSON data; objects JSON cannot hold become their ``str()``."""
    try:
        return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return str(value)


def as_text(value: Any) -> str:
    """Tool results as message text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(json_safe(value)).decode()
