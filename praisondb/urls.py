"""URL detection and redaction, in one place.

A URL alone picks the backend. Whatever is printed about a URL goes through
:func:`redact`, so a password never reaches an error, a log line, a repr or the CLI.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .errors import ConfigError

_SECRET_PARAMS = re.compile(r"(pass(word)?|secret|token|api[_-]?key|auth|sig(nature)?)", re.I)
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass(frozen=True)
class Backend:
    name: str
    target: str
    """``module:Class`` imported only when a URL needs it."""
    roles: frozenset[str]
    extra: str | None
    """The pip extra that installs the driver, if any."""


_CONV_STATE = frozenset({"conversations", "state"})
BACKENDS: dict[str, Backend] = {
    "sql": Backend("sql", "praisondb.stores.sql.store:SQLStore", _CONV_STATE, None),
    "mongo": Backend("mongo", "praisondb.stores.mongo.store:MongoStore", _CONV_STATE, "mongo"),
    "redis": Backend("redis", "praisondb.stores.redis.store:RedisStore", _CONV_STATE, "redis"),
    "json": Backend("json", "praisondb.stores.jsonfiles.store:JsonFileStore", _CONV_STATE, None),
    "memory": Backend("memory", "praisondb.stores.memory:MemoryStore", _CONV_STATE, None),
    "http": Backend("http", "praisondb.stores.http.store:HttpStore", _CONV_STATE, "client"),
    "clickhouse": Backend(
        "clickhouse",
        "praisondb.stores.clickhouse:ClickHouseSink",
        frozenset({"analytics"}),
        "clickhouse",
    ),
}

SCHEMES: dict[str, str] = {
    "sqlite": "sql",
    "sqlite+pysqlite": "sql",
    "postgresql": "sql",
    "postgres": "sql",
    "postgresql+psycopg": "sql",
    "mysql": "sql",
    "mysql+pymysql": "sql",
    "mariadb": "sql",
    "mariadb+pymysql": "sql",
    "mongodb": "mongo",
    "mongodb+srv": "mongo",
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "json": "json",
    "memory": "memory",
    "praisondb+http": "http",
    "praisondb+https": "http",
    "clickhouse": "clickhouse",
    "clickhouses": "clickhouse",
    "http": "clickhouse",
    "https": "clickhouse",
    "chdb": "clickhouse",
}

SQL_DRIVER_EXTRAS = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
}

SCHEME_EXTRAS = {"chdb": "chdb"}
"""Schemes whose driver comes from another extra than their backend's (embedded ClickHouse)."""


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL. ``str()`` and ``repr()`` are redacted; ``secret`` is not."""

    secret: str = field(repr=False)
    scheme: str
    backend: Backend
    path: str = ""
    """Filesystem path for sqlite/json/chdb, else the URL path."""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def redacted(self) -> str:
        return redact(self.secret)

    @property
    def extra(self) -> str | None:
        """The pip extra that installs this URL's driver: ``pip install 'praisondb[extra]'``."""
        base = self.scheme.split("+", 1)[0]
        return SCHEME_EXTRAS.get(base) or self.backend.extra or SQL_DRIVER_EXTRAS.get(base)

    def missing_driver(self, exc: ImportError) -> ConfigError:
        """The error for a driver that is not installed, naming the extra that installs it."""
        extra = self.extra
        hint = f"pip install 'praisondb[{extra}]'" if extra else "reinstall praisondb"
        return ConfigError(
            f"{self.redacted} needs a driver that is not installed ({exc.name or exc}); run: {hint}"
        )

    @property
    def family(self) -> str:
        """The scheme without a ``+driver`` suffix: postgresql, mysql, sqlite, ..."""
        base = self.scheme.split("+", 1)[0]
        return {"postgres": "postgresql", "mariadb": "mysql"}.get(base, base)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"StoreURL({self.redacted!r})"


def accepted_schemes() -> str:
    return ", ".join(f"{s}://" for s in SCHEMES) + ", or a *.db / *.sqlite path, or a directory"


def parse_url(url: str | os.PathLike[str], role: str = "conversations") -> StoreURL:
    """Detect the backend from a URL or bare path and check it can serve ``role``."""
    text = os.fspath(url).strip()
    if not text:
        raise ConfigError("empty URL; accepted: " + accepted_schemes())
    if "://" not in text:
        text = _bare_path_to_url(text)
    scheme = text.split("://", 1)[0].lower()
    backend = _backend_for(scheme)
    if backend is None:
        raise ConfigError(
            f"unknown URL scheme {scheme!r} in {redact(text)}; accepted: {accepted_schemes()}"
        )
    if role not in backend.roles:
        serving = sorted(n for n, b in BACKENDS.items() if role in b.roles)
        raise ConfigError(f"{redact(text)} cannot serve {role}; use one of: {', '.join(serving)}")
    parts = urlsplit(text)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    path = ""
    rest = unquote(text.split("://", 1)[1].split("?", 1)[0])
    if scheme.startswith("sqlite"):
        # SQLAlchemy's convention: sqlite:///rel.db is relative, sqlite:////abs.db absolute.
        path = rest[1:] if rest.startswith("/") else rest
    elif scheme in {"json", "chdb"}:
        # file-URL convention: json:///var/data is /var/data, json://data is ./data.
        path = rest
    else:
        path = parts.path
    return StoreURL(secret=text, scheme=scheme, backend=backend, path=path, options=options)


def _backend_for(scheme: str) -> Backend | None:
    """Built-in schemes first, then third-party backends from the ``praisondb.backends`` group."""
    if scheme in SCHEMES:
        return BACKENDS[SCHEMES[scheme]]
    from importlib.metadata import entry_points

    for ep in entry_points(group="praisondb.backends", name=scheme):
        return Backend(scheme, ep.value, _CONV_STATE, None)
    return None


def _bare_path_to_url(text: str) -> str:
    path = Path(text).expanduser()
    if path.suffix.lower() in _SQLITE_SUFFIXES:
        return "sqlite:///" + quote(str(path.resolve()), safe="/")
    if path.is_dir() or text.endswith(("/", os.sep)):
        return "json://" + quote(str(path.resolve()), safe="/")
    raise ConfigError(
        f"{text!r} is neither a URL nor a *.db/*.sqlite file or a directory; accepted: "
        + accepted_schemes()
    )


def redact(url: str) -> str:
    """The URL with its password and any secret-looking query values replaced by ``***``."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    location, sep, query = rest.partition("?")
    netloc, slash, path = location.partition("/")
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = userinfo.split(":", 1)[0] + ":***@" + host
    if query:
        fragment = ""
        if "#" in query:
            query, fragment = query.split("#", 1)
            fragment = "#" + fragment
        pairs = [pair.partition("=") for pair in query.split("&")]
        query = (
            "&".join(
                k + eq + ("***" if eq and _SECRET_PARAMS.search(unquote(k)) else v)
                for k, eq, v in pairs
            )
            + fragment
        )
    return f"{scheme}://{netloc}{slash}{path}{sep}{query}"


def redact_text(text: str, *urls: str) -> str:
    """Scrub the secrets of ``urls`` from free text such as a driver's error message.

    The whole URL first (so its secret query values go too), then each secret on its
    own: drivers quote the password, or a ``password=`` setting, without the URL.
    """
    for url in urls:
        text = text.replace(url, redact(url))
        for secret in _secrets(url):
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return text


def _secrets(url: str) -> list[str]:
    """The password and the values of secret-looking query parameters of ``url``."""
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
    except ValueError:
        return []
    for key, _, value in (pair.partition("=") for pair in parts.query.split("&")):
        if value and _SECRET_PARAMS.search(unquote(key)):
            found.append(unquote(value))
    return [secret for secret in found if secret]
