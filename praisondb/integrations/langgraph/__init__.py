"""LangGraph checkpointer on praisondb: ``PraisonDBSaver(db)`` (extra ``praisondb[langgraph]``).

A LangGraph thread is a praisondb session, its checkpoints, blobs and pending writes are
state entries of that session, so every backend, ``praisondb copy/export/import/verify``
and retention cleanup work on it unchanged.
"""

from __future__ import annotations

try:
    import langgraph.checkpoint.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    from ...errors import ConfigError

    raise ConfigError(
        f"praisondb.integrations.langgraph needs langgraph-checkpoint 4.x ({exc}): "
        "pip install 'praisondb[langgraph]'"
    ) from exc

from ._threads import FENCE
from .saver import PraisonDBSaver

__all__ = ["FENCE", "PraisonDBSaver"]
