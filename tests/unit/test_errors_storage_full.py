"""A full disk is StorageFull (not transient, not retried) on every store that writes
files or reports it: SQLite, JSON files, PostgreSQL (53100 disk_full) and MariaDB
(table full / error 28). SQLite, JSON and PostgreSQL run on a real, small tmpfs (this
machine's tests run as root); PostgreSQL gets the messages table of a private database
moved onto it with a tablespace.

MariaDB is checked through its error codes only: InnoDB aborts the whole server when a
tablespace fills up during a rollback ("[FATAL] InnoDB: Error (Out of disk space) in
rollback", seen with a DATA DIRECTORY on a tmpfs), which a shared test server cannot
afford."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import praisondb
from praisondb import PraisonDB, PraisonDBError, StorageFull
from praisondb.stores.sql import dialects as sql_dialects
from praisondb.urls import parse_url
from tests.backends import env_url, postgres_backend

BIG = 256 * 1024  # per message; random hex so PostgreSQL's TOAST cannot compress it away


@contextlib.contextmanager
def small_fs(path: Path, size: str, owner: str | None = None) -> Iterator[Path]:
    """A real filesystem of ``size`` mounted at ``path``, unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs (tests need root here): {mounted.stderr}")
    try:
        if owner:
            shutil.chown(path, owner, owner)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _fill(db: PraisonDB, sid: str, limit: int = 400) -> StorageFull:
    """Append until the store says it is full; returns that error."""
    db.sessions.create(sid)
    for _ in range(limit):
        try:
            db.messages.append(sid, "user", os.urandom(BIG // 2).hex())
        except StorageFull as exc:
            return exc
        except PraisonDBError as exc:
            pytest.fail(f"a full disk came out as {type(exc).__name__}: {exc}")
    pytest.fail("the small filesystem never filled up")


def _check(error: StorageFull, caplog: pytest.LogCaptureFixture) -> None:
    assert not error.transient
    assert "free space" in str(error) and "Traceback" not in str(error)
    assert not [r for r in caplog.records if "retry" in r.getMessage()], "a full disk was retried"


def test_storage_full_is_public_and_not_transient() -> None:
    assert praisondb.StorageFull is StorageFull and "StorageFull" in praisondb.__all__
    assert issubclass(StorageFull, PraisonDBError) and StorageFull.transient is False
    assert "StorageFull" in (praisondb.errors.__doc__ or "")


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_file_stores(tmp_path: Path, scheme: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="praisondb")
    with small_fs(tmp_path / "full", "2m") as root:
        url = f"sqlite:///{root}/app.db" if scheme == "sqlite" else f"json://{root}/store"
        with PraisonDB(url) as db:
            error = _fill(db, "s1")
            _check(error, caplog)
            assert db.messages.count("s1") >= 1, "what fitted before is still there"


def _server_dir() -> Path:
    """A mount point the database server's own user can reach (pytest's tmp is root-only)."""
    return Path(tempfile.gettempdir()) / f"pdbt-full-{uuid.uuid4().hex[:8]}"


def test_postgresql_disk_full(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import psycopg

    caplog.set_level(logging.WARNING, logger="praisondb")
    space = f"pdbt_full_{uuid.uuid4().hex[:8]}"
    admin = env_url("postgres", "").replace("postgresql+psycopg://", "postgresql://", 1)
    mount = _server_dir()
    try:
        with small_fs(mount, "3m", owner="postgres") as where:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE TABLESPACE {space} LOCATION '{where}'")
            try:
                with postgres_backend(tmp_path) as url, PraisonDB(url, auto_migrate=True) as db:
                    db.ping()
                    private = url.replace("postgresql+psycopg://", "postgresql://", 1)
                    with psycopg.connect(private, autocommit=True) as conn:
                        conn.execute(f"ALTER TABLE praisondb_messages SET TABLESPACE {space}")
                    error = _fill(db, "s1")
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"DROP TABLESPACE IF EXISTS {space}")
    finally:
        mount.rmdir()
    _check(error, caplog)
    assert "53100" in str(error) or "No space left" in str(error), str(error)


def test_disk_full_codes_of_the_servers() -> None:
    """The codes each server uses for a full disk, through the real driver exception types
    (MariaDB's engine errors 28/135 come with error 1030, which the test above cannot
    provoke on demand)."""
    import psycopg
    import pymysql
    import sqlalchemy as sa

    url = parse_url("mysql://root@127.0.0.1/test")
    for args in [
        (1021, "Disk full (/tmp/#sql); waiting for someone to free some space..."),
        (1114, "The table 'messages' is full"),
        (1030, 'Got error 28 "No space left on device" from storage engine InnoDB'),
        (1030, 'Got error 135 "No more room in record file" from storage engine'),
    ]:
        exc = sa.exc.OperationalError("INSERT", {}, pymysql.err.OperationalError(*args))
        assert isinstance(sql_dialects.translate(exc, url), StorageFull), args
    other = sa.exc.OperationalError("INSERT", {}, pymysql.err.OperationalError(1030, "error 5"))
    assert not isinstance(sql_dialects.translate(other, url), StorageFull)
    assert issubclass(psycopg.errors.DiskFull, psycopg.errors.OperationalError)
    assert psycopg.errors.DiskFull.sqlstate == "53100"
