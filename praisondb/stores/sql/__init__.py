"""SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy Core: one store, one schema.

``store`` is the store; every difference between the three engines is in ``types``
(value codecs, column types), ``engine`` (options, engine creation, connection hooks),
``errors`` (driver error classification), ``statements`` (upserts) and ``packets``
(MySQL's max_allowed_packet); ``fastpath`` appends and loads on the bare driver; ``bulk``
loads whole sessions for transfer; ``state`` is the key/value part; ``schema`` and
``migrate`` own the tables and their Alembic revisions.
"""
