"""Agents whose sessions praisondb stores. ``anthropic`` is imported only when one runs."""

from __future__ import annotations

from .managed import CustomTool, ManagedAgent, ManagedConfig, ToolCallLimitExceeded

__all__ = ["CustomTool", "ManagedAgent", "ManagedConfig", "ToolCallLimitExceeded"]
