"""``praisondb serve``: the HTTP server over one database (the ``server`` extra)."""

from __future__ import annotations

import socket
from typing import Any

import click

from ..errors import ConfigError
from .options import DATABASE_URL_ENV
from .serve_security import app_options, security_options, show_access_log


def serve(
    database_url: str | None,
    *,
    state_url: str | None = None,
    analytics_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8787,
    max_body: int | None = None,
    auto_migrate: bool = False,
    follow_client_clock: bool = False,
    uvicorn_options: dict[str, Any] | None = None,
    **security: Any,
) -> None:
    """Serve ``database_url`` (and the other stores) over HTTP until interrupted."""
    try:
        import uvicorn

        from ..server.app import DEFAULT_MAX_BODY, create_app
    except ImportError as exc:
        raise ConfigError(
            f"praisondb serve needs the server extra ({exc.name}): pip install 'praisondb[server]'"
        ) from None
    from ..facade import PraisonDB

    db = PraisonDB(database_url, state_url, analytics_url, auto_migrate=auto_migrate)
    try:
        db.ping()
        show_access_log()
        app = create_app(
            db,
            max_body_bytes=max_body or DEFAULT_MAX_BODY,
            follow_client_clock=follow_client_clock,
            **app_options(db, host, **security),
        )
        options = dict(uvicorn_options or {})
        fd = options.pop("fd", None)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="info",
            access_log=False,  # serversec's access log (auth.py) leaves out query strings
            **options,
        )
        server = uvicorn.Server(config)
        if fd is None:
            server.run()
        else:
            # uvicorn's own fd= takes every socket for a Unix one, so TCP_NODELAY is never
            # set and each reply waits out a delayed ACK (~40 ms); the family is detected here
            server.run(sockets=[socket.socket(fileno=fd)])
    finally:
        db.close()


@click.command("serve")
@click.option(
    "--database-url",
    "database_url",
    envvar=DATABASE_URL_ENV,
    show_envvar=True,
    help="Conversation store URL (default: sqlite:///praisondb.db).",
)
@click.option("--state-url", help="State store URL (default: the conversation store).")
@click.option("--analytics-url", help="Analytics URL (default: none).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="Port."
)
@click.option(
    "--max-body",
    type=click.IntRange(1024),
    help="Largest request body accepted, in bytes (default 16 MiB); larger ones get 413.",
)
@click.option("--auto-migrate", is_flag=True, help="Create or upgrade the SQL schema on start.")
@click.option(
    "--fd",
    type=int,
    help="Listen on this inherited socket instead of --host/--port (socket activation).",
)
@click.option(
    "--follow-client-clock",
    is_flag=True,
    help="Run each request on the client's clock when it is ahead (up to a week): for "
    "test suites that move their clock forward; never with keys.",
)
@click.option("--ssl-certfile", help="TLS certificate (PEM), passed to uvicorn.")
@click.option("--ssl-keyfile", help="TLS private key (PEM), passed to uvicorn.")
@security_options
def serve_command(
    database_url: str | None,
    state_url: str | None,
    analytics_url: str | None,
    host: str,
    port: int,
    max_body: int | None,
    auto_migrate: bool,
    follow_client_clock: bool,
    fd: int | None,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    **security: Any,
) -> None:
    """Serve sessions, messages and state over HTTP (clients use praisondb+http://HOST:PORT).

    TLS: give --ssl-certfile and --ssl-keyfile, or put a reverse proxy in front.
    """
    given = {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile, "fd": fd}
    passed = {k: v for k, v in given.items() if v is not None}
    serve(
        database_url,
        state_url=state_url,
        analytics_url=analytics_url,
        host=host,
        port=port,
        max_body=max_body,
        auto_migrate=auto_migrate,
        follow_client_clock=follow_client_clock,
        uvicorn_options=passed,
        **security,
    )
