"""Redis and Redis Cluster: ``store`` (sessions and messages), ``items`` (runs, spans,
checkpoints), ``state``, and ``codec`` (key layout and value encoding)."""
