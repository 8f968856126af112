"""A server whose store fills its disk: the client gets StorageFull (507, not retried,
the fix in its message), every append it acknowledged is stored exactly once, the server
keeps answering, and appends go on once there is space again."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from praisondb import PraisonDB, PraisonDBError, StorageFull
from tests.server.serving import serve
from tests.unit.test_errors_storage_full import BIG, small_fs


def test_a_full_disk_behind_the_server(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="praisondb")
    with (
        small_fs(tmp_path / "full", "2m") as root,
        serve(f"sqlite:///{root}/served.db", tmp_path) as server,
        PraisonDB(server.client_url) as db,
    ):
        db.sessions.create("s1")
        acknowledged: list[str] = []
        error: StorageFull | None = None
        for _ in range(400):
            text = os.urandom(BIG // 2).hex()
            try:
                db.messages.append("s1", "user", text)
            except StorageFull as exc:
                error = exc
                break
            except PraisonDBError as exc:
                pytest.fail(f"a full disk came out as {type(exc).__name__}: {exc}")
            acknowledged.append(text)
        assert error is not None, "the small filesystem never filled up"
        assert not error.transient and "free space" in str(error)
        assert not [r for r in caplog.records if "retry" in r.getMessage()]
        assert acknowledged, "some appends fitted before the disk filled"
        stored = [m.content for m in db.messages.list("s1")]
        assert stored == acknowledged  # each acknowledged append once, nothing else
        db.ping()  # the server still answers

        grown = ["mount", "-o", "remount,size=16m", str(root)]
        subprocess.run(grown, check=True, capture_output=True)
        db.messages.append("s1", "user", "after the disk grew")
        assert [m.content for m in db.messages.list("s1")] == [
            *acknowledged,
            "after the disk grew",
        ]
