"""A static proof, checked by ``mypy --strict``, that every registered store implements its
protocols; nothing here runs (importing it imports no store or driver).

The registry (:data:`praisondb.urls.BACKENDS`) names classes by ``"module:Class"`` text,
so mypy cannot see them there; here every registered class is assigned to the protocol
it promises. ``tests/unit/test_architecture.py`` fails when a registered backend is
missing from this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import (
        AnalyticsSink,
        BulkSessionLoader,
        ConversationStore,
        MemoriesStore,
        StateStore,
        WholeSessionLoader,
        WireRowReader,
    )
    from .clickhouse import ClickHouseSink
    from .http.store import HttpStore
    from .jsonfiles.store import JsonFileStore
    from .memory import MemoryStore
    from .mongo.store import MongoStore
    from .redis.store import RedisStore
    from .sql.store import SQLStore

    CONVERSATION_STORES: tuple[type[ConversationStore], ...] = (
        HttpStore,
        JsonFileStore,
        MemoryStore,
        MongoStore,
        RedisStore,
        SQLStore,
    )
    STATE_STORES: tuple[type[StateStore], ...] = (
        HttpStore,
        JsonFileStore,
        MemoryStore,
        MongoStore,
        RedisStore,
        SQLStore,
    )
    BULK_LOADERS: tuple[type[BulkSessionLoader], ...] = (MemoryStore, SQLStore)
    WHOLE_SESSION_LOADERS: tuple[type[WholeSessionLoader], ...] = (HttpStore,)
    WIRE_ROW_READERS: tuple[type[WireRowReader], ...] = (SQLStore,)
    MEMORY_STORES: tuple[type[MemoriesStore], ...] = (
        HttpStore,
        JsonFileStore,
        MemoryStore,
        MongoStore,
        RedisStore,
        SQLStore,
    )
    ANALYTICS_SINKS: tuple[type[AnalyticsSink], ...] = (ClickHouseSink,)
