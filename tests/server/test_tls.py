"""``praisondb+https://``: a server started with ``--ssl-certfile/--ssl-keyfile`` is a
store once the client trusts its authority (``$SSL_CERT_FILE``, as for httpx), and an
untrusted certificate is a ConfigError saying so, never a retried outage."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from praisondb import AsyncPraisonDB, ConfigError, PraisonDB
from tests.conftest import require_module
from tests.server.serving import ROOT
from tests.servers import free_port

trustme = require_module("trustme")


@pytest.fixture
def authority(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate chain, server key) for 127.0.0.1."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths[1]))
    cert.private_key_pem.write_to_path(str(paths[2]))
    return paths


@pytest.fixture
def tls_server(authority: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[int]:
    ca, chain, key = authority
    port = free_port()
    cmd = [sys.executable, "-m", "praisondb", "serve", "--auto-migrate"]
    cmd += ["--database-url", f"sqlite:///{tmp_path / 'tls.db'}", "--port", str(port)]
    cmd += ["--ssl-certfile", str(chain), "--ssl-keyfile", str(key)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 60
    try:
        with httpx.Client(verify=context, timeout=5) as client:
            while True:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                try:
                    if client.get(f"https://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the TLS server did not start"
                time.sleep(0.05)  # the polling interval, not a synchronisation
        yield port
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_a_trusted_https_server_is_a_store(
    tls_server: int, authority: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(authority[0]))
    with PraisonDB(f"praisondb+https://127.0.0.1:{tls_server}") as db:
        db.sessions.create("secure")
        db.messages.append("secure", "user", "over TLS")
        assert [m.content for m in db.messages.list("secure")] == ["over TLS"]


def _create(url: str, face: str) -> None:
    if face == "sync":
        with PraisonDB(url) as db:
            db.sessions.create("nope")
        return

    async def main() -> None:
        async with AsyncPraisonDB(url) as db:
            await db.sessions.create("nope")

    asyncio.run(main())


@pytest.mark.parametrize("face", ["sync", "async"])
def test_an_untrusted_certificate_is_a_config_error_with_the_fix(
    tls_server: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, face: str
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    url = f"praisondb+https://127.0.0.1:{tls_server}"
    with caplog.at_level(logging.WARNING, "praisondb"), pytest.raises(ConfigError) as caught:
        _create(url, face)
    text = str(caught.value)
    assert "does not trust" in text and "SSL_CERT_FILE" in text
    assert "certificate" in text and str(tls_server) in text
    assert not [r for r in caplog.records if "retry" in r.getMessage()]  # not an outage
