"""The praisondb archive: JSON Lines (optionally gzip), one header line, one record per line.

The format is a promise to every future release (see ``docs/archive-format.md``): a
reader accepts every version up to :data:`FORMAT_VERSION` and refuses newer ones with a
clear message. Each session is a block that ends with a ``session_end`` record carrying
its message count and digest, and the archive ends with an ``end`` record, so a
truncated or edited file is caught line by line before anything is imported.

``records`` spells each record and the canonical message bytes; ``writer`` writes;
``grammar`` walks the record grammar once for ``reader``'s scan and import.
"""

from __future__ import annotations

from .reader import (
    ArchiveReader,
    ArchiveScan,
    Damage,
    MemoryBatch,
    SessionBlock,
    check_header,
    is_archive_path,
    read_header,
)
from .records import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ArchiveError,
    MessageDigest,
    canonical_message,
    checkpoint_record,
    iso,
    message_record,
    run_record,
    session_record,
    span_record,
    state_record,
)
from .writer import ArchiveWriter

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveScan",
    "ArchiveWriter",
    "Damage",
    "MemoryBatch",
    "MessageDigest",
    "SessionBlock",
    "canonical_message",
    "check_header",
    "checkpoint_record",
    "is_archive_path",
    "iso",
    "message_record",
    "read_header",
    "run_record",
    "session_record",
    "span_record",
    "state_record",
]
