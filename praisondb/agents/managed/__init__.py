"""Run an agent on Anthropic's managed-agents API and keep every turn in praisondb.

``config`` says what runs remotely, ``tools`` runs custom tools here, ``events`` reads
the event stream into a turn, and ``agent`` ties them to the repositories.
"""

from __future__ import annotations

from ...errors import ToolCallLimitExceeded
from .agent import ManagedAgent
from .config import CustomTool, ManagedConfig
from .remote import transcript
from .tools import ToolHandler, ToolResult

__all__ = [
    "CustomTool",
    "ManagedAgent",
    "ManagedConfig",
    "ToolCallLimitExceeded",
    "ToolHandler",
    "ToolResult",
    "transcript",
]
