"""Agents whose sessions praisondb stores. ``anthropic`` is imported only when one runs."""

from __future__ import annotations

from .managed import ManagedAgent, ManagedConfig

__all__ = ["ManagedAgent", "ManagedConfig"]
