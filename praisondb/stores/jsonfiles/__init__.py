"""JSON files in a directory: ``store`` (sessions and messages), ``log`` (the append-only
message log), ``records`` (runs, spans, checkpoints), ``state``, ``files`` (crash-safe file
I/O and locks) and ``codec``."""
