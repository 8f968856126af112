"""A local stand-in for Anthropic's managed-agents API (see :mod:`.server`).

It ships inside the package because ``praisondb demo`` talks to it when no
``ANTHROPIC_API_KEY`` is set; the tests drive it too.
"""

from __future__ import annotations

from .model import FAKE_API_KEY, RecordedRequest, default_reply
from .server import FakeManagedAgentsServer

__all__ = ["FAKE_API_KEY", "FakeManagedAgentsServer", "RecordedRequest", "default_reply"]
