"""MongoDB 4.0+: ``store`` (sessions, messages, runs, spans, checkpoints), ``state``, and
``codec`` (document shapes and key escaping)."""
