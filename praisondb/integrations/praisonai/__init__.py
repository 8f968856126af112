"""PraisonAI integration: ``PraisonDB`` as an agent's ``db`` (``MemoryConfig(db=db)``).

lifecycle.py holds the hooks the Agent calls, tracing.py the trace and span hooks,
transcript.py the mapping between stored messages and PraisonAI's chat history (tool
calls and results included). Nothing here imports PraisonAI.
"""

from .lifecycle import PROTOCOL_VERSION, LifecycleMixin
from .tracing import Trace, TracingMixin
from .transcript import AgentMessage

__all__ = ["PROTOCOL_VERSION", "AgentMessage", "LifecycleMixin", "Trace", "TracingMixin"]
