"""Throwaway database servers in Docker for the test suite, through testcontainers.

``bash tools/test.sh`` takes its servers from where ``PRAISONDB_TEST_SERVERS`` says:
``local`` (tools/services.sh, as CI runs), ``containers`` (this module) or ``auto``, the
default: containers when a Docker engine answers, else local. In containers mode the
pytest controller (``pytest_configure`` in tests/conftest.py, never an xdist worker)
starts one container per server whose ``PRAISONDB_TEST_<NAME>_URL`` is unset and sets
the variable before the workers spawn, so every worker inherits the same servers. They
are removed at exit (explicitly, and by testcontainers' Ryuk reaper if the process dies).

Redis Cluster stays local in every mode (tools/test.sh starts it with tools/services.sh):
a cluster tells its clients the addresses of its nodes, and from a container those are
container-internal addresses behind randomly mapped ports that tests on the host cannot
reach. Working around it needs fixed host ports and per-node announce settings, in
practice host networking, which Docker Desktop and remote engines do not have.

Run ``python -m tests.containers mode`` to print the mode ``auto`` resolves to here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

MODE_VARIABLE = "PRAISONDB_TEST_SERVERS"
MODES = ("auto", "local", "containers")
REPLICA_SET = "rs0"
PASSWORD = "test"  # throwaway servers of one test run; never printed
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Server:
    name: str
    """The backend name, the ``<NAME>`` of ``PRAISONDB_TEST_<NAME>_URL``."""
    image: str
    port: int
    """The port inside the container that the URL points at (mapped to a random host port)."""
    url: str
    """The URL template; ``{where}`` is ``host:port`` as seen from the tests."""


SERVERS: dict[str, Server] = {
    server.name: server
    for server in (
        # Trust auth, as the local server: the URL has no password, like tools/services.py's.
        Server(
            "postgres", "postgres:16-alpine", 5432, "postgresql+psycopg://postgres@{where}/test"
        ),
        Server("mysql", "mariadb:10.11", 3306, f"mysql+pymysql://root:{PASSWORD}@{{where}}/test"),
        Server("redis", "redis:7", 6379, "redis://{where}/0"),
        # directConnection: the replica set's only member is localhost:27017 inside the container.
        Server(
            "mongodb",
            "mongo:7",
            27017,
            f"mongodb://{{where}}/?replicaSet={REPLICA_SET}&directConnection=true",
        ),
        Server(
            "clickhouse",
            "clickhouse/clickhouse-server:24.8",
            8123,
            f"clickhouse://praisondb:{PASSWORD}@{{where}}",
        ),
    )
}


class ContainersUnavailable(RuntimeError):
    """Containers were asked for and could not all be had; the message says what to do."""

    def __init__(self, message: str, urls: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.urls = dict(urls or {})
        """The URL variables of the containers that did start (still running)."""


# -- pure parts ---------------------------------------------------------------------


def url_variable(name: str) -> str:
    """The variable tests/backends.py ``env_url`` reads for a backend."""
    return f"PRAISONDB_TEST_{name.upper()}_URL"


def server_url(name: str, host: str, port: int) -> str:
    """The test URL of server ``name`` reachable at ``host:port`` (IPv6 literals bracketed)."""
    try:
        template = SERVERS[name].url
    except KeyError:
        raise ValueError(f"no container for {name!r}; known: {sorted(SERVERS)}") from None
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return template.format(where=where)


def missing_servers(environ: Mapping[str, str]) -> list[str]:
    """The servers whose URL variable is unset or empty: the ones containers mode starts."""
    return [name for name in SERVERS if not environ.get(url_variable(name))]


def normalise_mode(requested: str | None) -> str:
    """A ``PRAISONDB_TEST_SERVERS`` value, checked; unset or empty means ``auto``."""
    mode = (requested or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{MODE_VARIABLE}={requested!r}; use one of {', '.join(MODES)}")
    return mode


def docker_host_description(environ: Mapping[str, str] = os.environ) -> str:
    """Where the engine was looked for, in words that name DOCKER_HOST."""
    if environ.get("DOCKER_HOST"):
        return f"at DOCKER_HOST={environ['DOCKER_HOST']}"
    return f"at {DEFAULT_SOCKET} (DOCKER_HOST is unset)"


def no_engine_message() -> str:
    return (
        f"{MODE_VARIABLE}=containers but no Docker engine answers {docker_host_description()}; "
        f"start Docker or set DOCKER_HOST to a running engine, or use {MODE_VARIABLE}=local"
    )


# -- the engine ---------------------------------------------------------------------


def docker_engine_reachable(timeout: float = 2.0) -> bool:
    """Whether a Docker engine answers a ping within ``timeout`` seconds; never raises.

    The engine is the one testcontainers would use: ``tc.host`` from
    ~/.testcontainers.properties, else ``DOCKER_HOST``, else the current docker context,
    else the default socket. The ping runs in a daemon thread so that an engine that
    accepts and never answers (or an ssh:// host that hangs) still costs ``timeout``.
    """
    try:
        import docker
        from testcontainers.core.docker_client import get_docker_host
    except Exception:
        return False
    answers: list[bool] = []

    def ping() -> None:
        with contextlib.suppress(Exception):
            environment = dict(os.environ)
            host = get_docker_host()
            if host:
                environment["DOCKER_HOST"] = host
            # as testcontainers' DockerClient does: the ssh binary, not paramiko
            ssh = environment.get("DOCKER_HOST", "").startswith("ssh://")
            client = docker.from_env(timeout=timeout, environment=environment, use_ssh_client=ssh)
            try:
                answers.append(client.ping() is True)
            finally:
                client.close()

    thread = threading.Thread(target=ping, name="docker-ping", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answers) and answers[0]


def resolve_mode(
    requested: str | None, engine_reachable: Callable[[], bool] = docker_engine_reachable
) -> str:
    """``local`` or ``containers`` for a ``PRAISONDB_TEST_SERVERS`` value.

    ``local`` never looks for an engine; ``containers`` without one is an error (it was
    asked for explicitly) rather than a silent fall back to local servers.
    """
    mode = normalise_mode(requested)
    if mode == "local":
        return "local"
    if engine_reachable():
        return "containers"
    if mode == "auto":
        return "local"
    raise ContainersUnavailable(no_engine_message())


# -- starting containers -------------------------------------------------------------


def start_containers(names: Iterable[str]) -> dict[str, str]:
    """Start a container per server name; return ``{PRAISONDB_TEST_<NAME>_URL: url}``.

    They start in parallel (MariaDB's first start alone takes 10-20 s), once Ryuk runs.
    Each is removed at exit. Raises ContainersUnavailable naming every server that failed;
    its ``urls`` holds the ones that did start.
    """
    wanted = list(dict.fromkeys(names))
    unknown = sorted(set(wanted) - set(SERVERS))
    if unknown:
        raise ValueError(f"no container for {unknown}; known: {sorted(SERVERS)}")
    if not wanted:
        return {}
    if not docker_engine_reachable():
        raise ContainersUnavailable(no_engine_message())
    _start_reaper()
    urls: dict[str, str] = {}
    failures: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="container") as pool:
        futures = {name: pool.submit(_start, SERVERS[name]) for name in wanted}
    for name, future in futures.items():
        try:
            urls[url_variable(name)] = future.result()
        except Exception as exc:
            failures[name] = _short(f"{SERVERS[name].image}: {type(exc).__name__}: {exc}")
    if failures:
        lines = "\n".join(f"  {name} ({why})" for name, why in failures.items())
        raise ContainersUnavailable(f"containers that did not start:\n{lines}", urls)
    return urls


def _start_reaper() -> None:
    """Start Ryuk before the threads do, or each would race to create its own."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import Reaper

    if testcontainers_config.ryuk_disabled:
        return
    try:
        Reaper.get_instance()
    except Exception as exc:
        raise ContainersUnavailable(
            f"testcontainers' Ryuk reaper did not start ({_short(f'{type(exc).__name__}: {exc}')});"
            " where Ryuk cannot run, set TESTCONTAINERS_RYUK_DISABLED=true (containers are"
            " then removed only at a normal exit)"
        ) from exc


def _start(server: Server) -> str:
    container = _container(server)
    try:
        container.start()
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(server.port))
        if server.name == "mongodb":
            _initiate_replica_set(host, port)
    except BaseException:
        _stop(container)
        raise
    atexit.register(_stop, container)
    return server_url(server.name, host, port)


def _stop(container: DockerContainer) -> None:
    with contextlib.suppress(Exception):
        container.stop()


def _container(server: Server) -> DockerContainer:
    """The testcontainers object for a server, configured like the local one."""
    if server.name == "postgres":
        from testcontainers.community.postgres import PostgresContainer

        return PostgresContainer(
            server.image, username="postgres", password=PASSWORD, dbname="test", driver="psycopg"
        ).with_env("POSTGRES_HOST_AUTH_METHOD", "trust")
    if server.name == "mysql":
        from testcontainers.community.mysql import MySqlContainer

        # The same server character set and collation as Debian's MariaDB (tools/services.py).
        return MySqlContainer(
            server.image, dialect="pymysql", username="root", password=PASSWORD, dbname="test"
        ).with_command("--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci")
    if server.name == "redis":
        from testcontainers.community.redis import RedisContainer

        return RedisContainer(server.image, port=server.port)
    if server.name == "mongodb":
        # Not MongoDbContainer: it turns authentication on, and a replica set with
        # authentication needs a key file. The store needs a replica set (transactions).
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        return (
            DockerContainer(server.image)
            .with_exposed_ports(server.port)
            .with_command(
                # as tools/services.py: SIGKILLed writers' transactions must not hold locks 60 s
                [
                    "--replSet",
                    REPLICA_SET,
                    "--bind_ip_all",
                    "--setParameter",
                    "transactionLifetimeLimitSeconds=5",
                ]
            )
            .waiting_for(LogMessageWaitStrategy(re.compile("waiting for connections", re.I)))
        )
    if server.name == "clickhouse":
        from testcontainers.community.clickhouse import ClickHouseContainer

        return ClickHouseContainer(
            server.image, username="praisondb", password=PASSWORD, dbname="test"
        )
    raise ValueError(f"no container for {server.name!r}")


def _initiate_replica_set(host: str, port: int, timeout: float = 60) -> None:
    """Make the container's mongod the primary of a one-member replica set."""
    import pymongo
    import pymongo.errors

    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        host, port, directConnection=True, serverSelectionTimeoutMS=5000
    )
    config = {"_id": REPLICA_SET, "members": [{"_id": 0, "host": "localhost:27017"}]}
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.admin.command("replSetInitiate", config)
            except pymongo.errors.OperationFailure as exc:
                if exc.code != 23:  # AlreadyInitialized
                    raise
            except pymongo.errors.ConnectionFailure:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # polling interval, not synchronisation
                continue
            break
        while not client.admin.command("hello").get("isWritablePrimary"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"mongod in the container was not primary after {timeout:.0f}s")
            time.sleep(0.2)  # polling interval, not synchronisation
    finally:
        client.close()


def _short(text: str, limit: int = 1000) -> str:
    """Wait strategies put whole container logs in their errors; keep the end."""
    return text if len(text) <= limit else "..." + text[-limit:]


# -- the pytest hook and tools/test.sh ------------------------------------------------


def configure_servers(environ: MutableMapping[str, str], *, strict: bool) -> dict[str, str]:
    """Containers mode: start what is missing and set its URL variable in ``environ``.

    Nothing happens when ``PRAISONDB_TEST_SERVERS`` is unset (plain ``pytest`` stays as
    it was) or resolves to ``local``, or when every URL variable is already set. A
    container that fails is an error when ``strict`` (PRAISONDB_REQUIRE_ALL_BACKENDS),
    else a warning and its tests skip. Returns the variables set.
    """
    requested = environ.get(MODE_VARIABLE)
    if not requested or normalise_mode(requested) == "local":
        return {}
    wanted = missing_servers(environ)
    if not wanted or resolve_mode(requested) == "local":
        return {}
    try:
        urls = start_containers(wanted)
    except ContainersUnavailable as exc:
        if strict:
            raise
        print(f"tests/containers: {exc}\n(continuing: their tests skip)", file=sys.stderr)
        urls = exc.urls
    environ.update(urls)
    return urls


def main(argv: list[str]) -> int:
    """``mode``: print ``local`` or ``containers`` for tools/test.sh; exit 2 when it cannot be."""
    if argv[1:] != ["mode"]:
        print("usage: python -m tests.containers mode", file=sys.stderr)
        return 2
    try:
        print(resolve_mode(os.environ.get(MODE_VARIABLE)))
    except (ValueError, ContainersUnavailable) as exc:
        print(f"tests/containers: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
