"""The local managed-agents API server the tests run the real ``anthropic`` SDK against.

It lives in the package (``praisondb.demo.fake_server``) because ``praisondb demo``
uses it offline; tests import it from here.
"""

from praisondb.demo.fake_server import (
    FAKE_API_KEY,
    FakeManagedAgentsServer,
    RecordedRequest,
    default_reply,
)

__all__ = ["FAKE_API_KEY", "FakeManagedAgentsServer", "RecordedRequest", "default_reply"]
