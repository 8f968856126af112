"""ClickHouse analytics sink: a server over HTTP, or the embedded engine (``chdb://``).

:meth:`ClickHouseSink.record` copies the event into the journal (a memory-mapped file:
one JSON line into the OS page cache, no system call; see
:mod:`praisondb.analytics.journal`) and appends it to an in-memory buffer, so an event
survives a SIGKILL of the process once ``record`` returns. A daemon thread drains the
buffer in batches (by size or every ``flush_interval``), encodes each as Arrow
(:mod:`praisondb.analytics.codec`) and inserts it with an insert-deduplication token
derived from its event ids; while one INSERT runs (the
engine releases the interpreter lock) the next batch is encoded, so the Python work
and the engine's work overlap. When ClickHouse cannot be reached the batch goes to the
spool (:mod:`praisondb.analytics.spool`); when it answers again the spool is replayed,
skipping ids already stored, so no event is lost and none is stored twice. A journal
segment is deleted once all its events are delivered or spooled; a dead process's
journal is replayed like the spool.

Buffer full (``max_buffer`` events waiting, i.e. ClickHouse or the disk cannot keep
up): ``record`` blocks up to ``block_timeout`` seconds for the flusher to make room,
then moves the oldest batch to the spool itself and carries on. Events are never
dropped; the price of overload is caller latency, then disk.

URL forms: ``clickhouse://user:pass@host:8123/database``, ``clickhouses://`` (TLS, 8443),
``http(s)://host:port``, ``chdb:///abs/dir`` and ``chdb://memory``. Options (keyword or
URL query): ``database``, ``cluster``, ``ttl_days``, ``auto_migrate`` (default: on for
chdb, off for servers), ``spool_dir``, ``batch_size``, ``flush_interval``,
``max_buffer``, ``block_timeout``, ``retry_interval``, ``connect_timeout``,
``send_receive_timeout``, ``verify``, ``journal`` (default on).

The package only delivers; the ready queries are :class:`praisondb.analytics.Analytics`,
which wraps this sink and reaches it through ``run_query``::

    sink.py    ClickHouseSink: record, flush, close, stats; the flusher thread, spool
               and journal orchestration, replay, schema checks
    insert.py  one INSERT: encode (Arrow or JSON), send, Flight (an insert on a helper
               thread), the stored-id check that makes replay exact
    client.py  clickhouse-connect clients (server or chdb) and their errors, redacted
"""

from __future__ import annotations

from .sink import ClickHouseSink

__all__ = ["ClickHouseSink"]
