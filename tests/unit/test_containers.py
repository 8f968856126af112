"""How the test command chooses containers or local servers, and the URLs containers get.

No Docker engine runs where this suite runs, so the container start itself is not
exercised here; everything around it is: the engine probe (against a dead socket, a
closed port, a silent listener and a stand-in that answers the Engine API's ping), the
mode decision, the URL of each server, and the pytest hook in a real pytest run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pymongo.uri_parser
import pytest
from sqlalchemy.engine import make_url

from praisondb.urls import parse_url
from tests.containers import (
    SERVERS,
    ContainersUnavailable,
    configure_servers,
    docker_engine_reachable,
    main,
    missing_servers,
    resolve_mode,
    server_url,
    start_containers,
    url_variable,
)
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ALL_URLS = {url_variable(name): f"{name}://set-by-the-user" for name in SERVERS}


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """DOCKER_HOST at a unix socket path that does not exist."""
    host = f"unix://{tmp_path / 'no-such-docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", host)
    return host


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


class _EngineAPI(BaseHTTPRequestHandler):
    """The two Engine API calls a ping makes: GET /version, then GET /v<api>/_ping."""

    def do_GET(self) -> None:
        if self.path == "/version":
            body = json.dumps({"ApiVersion": "1.44", "Version": "stand-in"}).encode()
            kind = "application/json"
        elif self.path.endswith("/_ping"):
            body, kind = b"OK", "text/plain"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def engine_api() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EngineAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


# -- the engine probe ----------------------------------------------------------------


def _timed_probe(timeout: float) -> tuple[bool, float]:
    start = time.monotonic()
    answer = docker_engine_reachable(timeout=timeout)
    return answer, time.monotonic() - start


def test_no_engine_at_a_missing_unix_socket(no_engine: str) -> None:
    answer, elapsed = _timed_probe(2.0)
    assert answer is False
    assert elapsed < 1.0  # fails at once, not after the timeout


def test_no_engine_at_a_closed_tcp_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")
    answer, elapsed = _timed_probe(2.0)
    assert answer is False
    assert elapsed < 1.0


def test_an_engine_that_never_answers_costs_the_timeout_only(
    monkeypatch: pytest.MonkeyPatch, silent_listener: int
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{silent_listener}")
    answer, elapsed = _timed_probe(0.5)
    assert answer is False
    assert 0.4 < elapsed < 1.5


def test_an_answering_engine_api_is_reachable(
    monkeypatch: pytest.MonkeyPatch, engine_api: int
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{engine_api}")
    assert docker_engine_reachable(timeout=2.0) is True


# -- mode ----------------------------------------------------------------------------


def _never_probed() -> bool:
    raise AssertionError("local mode must not look for a Docker engine")


@pytest.mark.parametrize(
    ("requested", "reachable", "mode"),
    [
        (None, True, "containers"),
        ("", False, "local"),
        ("auto", True, "containers"),
        ("auto", False, "local"),
        (" Auto ", False, "local"),
        ("containers", True, "containers"),
    ],
)
def test_mode(requested: str | None, reachable: bool, mode: str) -> None:
    assert resolve_mode(requested, lambda: reachable) == mode


def test_local_mode_never_probes() -> None:
    assert resolve_mode("local", _never_probed) == "local"


def test_containers_mode_without_an_engine_names_docker_host(no_engine: str) -> None:
    with pytest.raises(ContainersUnavailable) as caught:
        resolve_mode("containers")
    message = str(caught.value)
    assert f"DOCKER_HOST={no_engine}" in message
    assert "PRAISONDB_TEST_SERVERS=local" in message


def test_unset_docker_host_is_named_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(ContainersUnavailable, match=r"DOCKER_HOST is unset"):
        resolve_mode("containers", lambda: False)


def test_unknown_mode_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'docker'; use one of auto, local, containers"):
        resolve_mode("docker", _never_probed)


def test_mode_command_for_tools_test_sh(
    no_engine: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRAISONDB_TEST_SERVERS", "auto")
    assert main(["containers", "mode"]) == 0
    assert capsys.readouterr().out == "local\n"
    monkeypatch.setenv("PRAISONDB_TEST_SERVERS", "containers")
    assert main(["containers", "mode"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"DOCKER_HOST={no_engine}" in captured.err
    assert main(["containers"]) == 2


# -- URLs ----------------------------------------------------------------------------


def test_server_urls_have_the_local_shapes() -> None:
    assert server_url("postgres", "127.0.0.1", 32768) == (
        "postgresql+psycopg://postgres@127.0.0.1:32768/test"
    )
    assert server_url("mysql", "127.0.0.1", 32769) == (
        "mysql+pymysql://root:test@127.0.0.1:32769/test"
    )
    assert server_url("redis", "localhost", 32770) == "redis://localhost:32770/0"
    assert server_url("mongodb", "docker", 32771) == (
        "mongodb://docker:32771/?replicaSet=rs0&directConnection=true"
    )
    assert server_url("clickhouse", "10.0.0.5", 32772) == (
        "clickhouse://praisondb:test@10.0.0.5:32772"
    )


def test_ipv6_hosts_are_bracketed() -> None:
    assert server_url("redis", "::1", 32770) == "redis://[::1]:32770/0"


def test_unknown_server_has_no_url() -> None:
    with pytest.raises(ValueError, match="redis_cluster"):
        server_url("redis_cluster", "127.0.0.1", 7001)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("postgres", "postgresql"),
        ("mysql", "mysql"),
        ("redis", "redis"),
        ("mongodb", "mongodb"),
    ],
)
def test_urls_open_the_right_store(name: str, family: str) -> None:
    assert parse_url(server_url(name, "127.0.0.1", 40000)).family == family


def test_clickhouse_url_is_an_analytics_server_url() -> None:
    parsed = parse_url(server_url("clickhouse", "127.0.0.1", 40000), "analytics")
    assert parsed.backend.name == "clickhouse"
    assert ":test@" not in parsed.redacted  # the password stays out of messages


def test_mysql_url_carries_its_credentials_to_tests_backends() -> None:
    url = make_url(server_url("mysql", "127.0.0.1", 40000))
    assert (url.username, url.password, url.port, url.database) == ("root", "test", 40000, "test")


def test_mongodb_url_connects_straight_to_the_replica_set_member() -> None:
    parsed = pymongo.uri_parser.parse_uri(server_url("mongodb", "127.0.0.1", 40000))
    assert parsed["nodelist"] == [("127.0.0.1", 40000)]
    assert parsed["options"]["replicaSet"] == "rs0"
    assert parsed["options"]["directConnection"] is True


def test_every_server_but_the_cluster_has_a_container() -> None:
    assert set(SERVERS) == {"postgres", "mysql", "redis", "mongodb", "clickhouse"}
    assert url_variable("redis_cluster") not in {url_variable(n) for n in SERVERS}


# -- what containers mode starts -------------------------------------------------------


def test_missing_servers_are_the_unset_or_empty_variables() -> None:
    environ = {**ALL_URLS, "PRAISONDB_TEST_REDIS_URL": "", "PRAISONDB_TEST_MYSQL_URL": ""}
    del environ["PRAISONDB_TEST_CLICKHOUSE_URL"]
    assert missing_servers(environ) == ["mysql", "redis", "clickhouse"]
    assert missing_servers(ALL_URLS) == []


@pytest.mark.parametrize("mode", [None, "", "local", "auto"])
def test_no_containers_without_containers_mode(mode: str | None, no_engine: str) -> None:
    environ = {} if mode is None else {"PRAISONDB_TEST_SERVERS": mode}
    before = dict(environ)
    assert configure_servers(environ, strict=True) == {}
    assert environ == before


def test_containers_mode_with_every_url_set_starts_nothing(no_engine: str) -> None:
    environ = {**ALL_URLS, "PRAISONDB_TEST_SERVERS": "containers"}
    assert configure_servers(environ, strict=True) == {}
    assert environ == {**ALL_URLS, "PRAISONDB_TEST_SERVERS": "containers"}


@pytest.mark.parametrize("strict", [True, False])
def test_containers_mode_without_an_engine_fails(no_engine: str, strict: bool) -> None:
    environ = {"PRAISONDB_TEST_SERVERS": "containers"}
    with pytest.raises(ContainersUnavailable, match="DOCKER_HOST="):
        configure_servers(environ, strict=strict)
    assert environ == {"PRAISONDB_TEST_SERVERS": "containers"}


def test_start_containers_checks_names_and_the_engine(no_engine: str) -> None:
    with pytest.raises(ValueError, match="redis_cluster"):
        start_containers(["redis", "redis_cluster"])
    assert start_containers([]) == {}
    with pytest.raises(ContainersUnavailable, match=f"DOCKER_HOST={no_engine}"):
        start_containers(["redis"])


# -- the pytest hook -------------------------------------------------------------------


def _pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRAISONDB_TEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pytest_in_containers_mode_without_an_engine_stops_before_any_test(
    tmp_path: Path,
) -> None:
    dead = f"unix://{tmp_path / 'no-such-docker.sock'}"
    env = {"PRAISONDB_TEST_SERVERS": "containers", "DOCKER_HOST": dead}
    result = _pytest(env, "-n", "2", "tests/unit/test_ids.py")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert f"DOCKER_HOST={dead}" in result.stderr
    assert "passed" not in result.stdout


def test_pytest_in_auto_mode_without_an_engine_runs_on_local_servers(tmp_path: Path) -> None:
    dead = f"unix://{tmp_path / 'no-such-docker.sock'}"
    env = {"PRAISONDB_TEST_SERVERS": "auto", "DOCKER_HOST": dead}
    result = _pytest(env, "tests/unit/test_ids.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
