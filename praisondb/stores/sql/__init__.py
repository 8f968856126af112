"""SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy Core: one store, one schema.

``store`` is the store; ``dialects`` holds every difference between the three engines;
``fastpath`` appends and loads on the bare driver; ``bulk`` loads whole sessions for
transfer; ``state`` is the key/value part; ``schema`` and ``migrate`` own the tables and
their Alembic revisions.
"""
