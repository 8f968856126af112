"""Move sessions between any two stores, or through an archive file, and prove it worked.

Plain functions the ``praisondb copy|export|import|verify`` commands wrap::

    from praisondb import transfer
    report = transfer.copy("sqlite:///app.db", "postgresql://app@db/app")
    assert report.verify.ok

Every function streams: one batch of messages per worker is in memory at a time.
"""

from __future__ import annotations

from ..archive import ArchiveError
from ..errors import ConflictAbort
from ._archive_io import export, import_
from ._endpoints import CURSOR_SCOPE_PREFIX
from ._plan import DEFAULT_BATCH_SIZE, plan
from ._reports import (
    OnConflict,
    Progress,
    ProgressCallback,
    SessionDiff,
    StateMode,
    TransferReport,
    VerifyReport,
)
from ._run import copy, verify

__all__ = [
    "CURSOR_SCOPE_PREFIX",
    "DEFAULT_BATCH_SIZE",
    "ArchiveError",
    "ConflictAbort",
    "OnConflict",
    "Progress",
    "ProgressCallback",
    "SessionDiff",
    "StateMode",
    "TransferReport",
    "VerifyReport",
    "copy",
    "export",
    "import_",
    "plan",
    "verify",
]
