"""ClickHouse connections: open a clickhouse-connect client, and turn its errors into ours.

Every message that leaves here is redacted against the URL's secret form, so a
password in the URL never reaches a log line or an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from ...analytics.options import MEMORY_PATHS
from ...errors import BackendUnavailable, ConfigError, PraisonDBError, ValidationError
from ...retry import driver_text
from ...urls import StoreURL, redact_text

DEFAULT_PORTS = {"clickhouse": 8123, "http": 8123, "clickhouses": 8443, "https": 8443}

Rows = tuple[list[str], list[tuple[Any, ...]]]


def target_error(exc: BaseException) -> bool:
    """Failures that say ClickHouse is not there (as opposed to refusing our data)."""
    return isinstance(exc, (ClickHouseError, OSError))


def first_line(exc: BaseException, url: StoreURL, limit: int = 300) -> str:
    """The redacted first line of a driver error (its type name when it has no text)."""
    return driver_text(exc, url.secret, limit=limit)


def database_from_path(url: StoreURL) -> str | None:
    """A server URL's path names the database; a chdb path is a directory."""
    if url.scheme == "chdb":
        return None
    name = url.path.strip("/")
    return name or None


def check_target(url: StoreURL) -> None:
    """Refuse a server URL with no host or a malformed port before any thread starts."""
    if url.scheme == "chdb":
        return
    parts = urlsplit(url.secret)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError(f"invalid port in {url.redacted}") from None
    if not parts.hostname:
        raise ConfigError(f"{url.redacted} names no host")


def connect(
    url: StoreURL,
    *,
    readonly: bool = False,
    verify: bool = True,
    connect_timeout: float = 5.0,
    send_receive_timeout: float = 60.0,
) -> Any:
    """A new clickhouse-connect client; errors come out redacted.

    Read-only means ``readonly=1`` on chdb: it also refuses table functions, and
    ``file()``/``url()`` there would read this host's files or reach its network
    with the application's rights. A server gets ``readonly=2`` (settings may still
    be sent with each query); its ``file()`` is confined to ``user_files_path`` and
    the rest is the server's grants to decide.
    """
    chdb = url.scheme == "chdb"
    settings = {"readonly": 1 if chdb else 2} if readonly else None
    if chdb:
        _require_chdb()
    try:
        if chdb:
            path = None if url.path in MEMORY_PATHS else str(Path(url.path).expanduser())
            if path:
                Path(path).mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(interface="chdb", path=path, settings=settings)
        parts = urlsplit(url.secret)
        return clickhouse_connect.get_client(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[url.scheme],
            username=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
            secure=url.scheme in {"clickhouses", "https"},
            verify=verify,
            connect_timeout=connect_timeout,
            send_receive_timeout=send_receive_timeout,
            query_retries=0,
            autogenerate_session_id=False,
            settings=settings,
        )
    except PraisonDBError:
        raise
    except Exception as exc:
        text = redact_text(f"{type(exc).__name__}: {exc}", url.secret)
        first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
        if chdb and ("EmbeddedServer" in text or "different path" in text):
            first = (
                "the chdb directory is open in another process, or this process already "
                "opened a different chdb directory (one chdb directory per process); " + first
            )
        raise BackendUnavailable(f"cannot open ClickHouse: {first}", url=url.redacted) from exc


def _require_chdb() -> None:
    """clickhouse-connect imports the embedded engine only when asked for it, and then names
    its own extra; ours is the one that installs both."""
    try:
        import chdb  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "chdb:// needs the embedded ClickHouse engine, which is not installed "
            f"({exc.name or exc}); run: pip install 'praisondb[chdb]'"
        ) from exc


def query_target(client: Any, sql: str, parameters: Mapping[str, Any], url: StoreURL) -> Rows:
    """One query: ValidationError for a bad or refused query, BackendUnavailable for an outage."""
    try:
        result = client.query(sql, parameters=dict(parameters))
    except ClickHouseError as exc:
        message = first_line(exc, url, 500)
        if isinstance(exc, OperationalError):
            raise BackendUnavailable(
                f"analytics query failed: {message}", url=url.redacted
            ) from exc
        if getattr(exc, "code", None) == 164:
            raise ValidationError(f"read-only analytics query refused: {message}") from exc
        raise ValidationError(f"analytics query failed: {message}") from exc
    return list(result.column_names), [tuple(row) for row in result.result_rows]


def ping_target(client: Any, url: StoreURL) -> None:
    """One round trip; BackendUnavailable when ClickHouse does not answer."""
    try:
        client.command("SELECT 1")
    except PraisonDBError:
        raise
    except Exception as exc:
        raise BackendUnavailable(
            f"ClickHouse did not answer: {first_line(exc, url)}", url=url.redacted
        ) from exc


__all__ = [
    "DEFAULT_PORTS",
    "check_target",
    "connect",
    "database_from_path",
    "first_line",
    "ping_target",
    "query_target",
    "target_error",
]
