"""The security options of ``praisondb serve``: keys, tokens, rate limits, CORS, agents.

Kept apart from serve.py so the command itself stays a thin mapping of its flags: this
module turns them into ``create_app``'s ``auth``, ``agents`` and ``cors_origins``.

Keys are required (``--require-keys``) by default whenever the server listens on an
address other than loopback; starting open there takes ``--insecure-no-auth``.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import ConfigError
from ..server.turns import DEFAULT_CHAT_LEASE, DEFAULT_CHAT_WAIT, MIN_CHAT_LEASE, ChatTurns

F = TypeVar("F", bound=Callable[..., Any])
ACCESS_FORMAT = "%(asctime)s access %(message)s"
TURNS_FORMAT = "%(asctime)s %(levelname)s chat %(message)s"


def security_options(func: F) -> F:
    """The flags, as one decorator (they arrive as keyword arguments of the command)."""
    options = [
        click.option(
            "--require-keys/--no-require-keys",
            "require_keys",
            default=None,
            help="Refuse requests without an API key or session token (default: on unless "
            "the host is loopback). Keys: `praisondb keys create`.",
        ),
        click.option(
            "--insecure-no-auth",
            is_flag=True,
            help="Serve a non-loopback address without keys (only behind a proxy that "
            "authenticates).",
        ),
        click.option(
            "--token-secret",
            envvar="PRAISONDB_TOKEN_SECRET",
            show_envvar=True,
            help="Secret (16+ bytes) signing session tokens; without it tokens are refused.",
        ),
        click.option(
            "--rate",
            "default_rate",
            help="Rate limit for keys without their own and for session tokens, e.g. 20/s.",
        ),
        click.option(
            "--cors-origin",
            "cors_origins",
            multiple=True,
            help="Allow browser calls from this origin (repeatable; CORS is off by default).",
        ),
        click.option(
            "--agent",
            "agent_specs",
            multiple=True,
            help="Serve an agent: NAME=module:attribute (a ManagedAgent or a function of "
            "(session, message)); repeatable.",
        ),
        click.option(
            "--chat-wait",
            type=click.FloatRange(0, 3600),
            default=DEFAULT_CHAT_WAIT,
            show_default=True,
            help="Seconds a chat waits while another chat with the same session runs (on "
            "any server process of the store); then 409 LockTimeout with Retry-After.",
        ),
        click.option(
            "--chat-lease",
            type=click.FloatRange(MIN_CHAT_LEASE, 3600),
            default=DEFAULT_CHAT_LEASE,
            show_default=True,
            help="Seconds a chat's session lease lasts unless renewed (renewed while the "
            "agent runs): how long a session stays blocked after its server died mid-turn.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def app_options(
    db: Any,
    host: str,
    *,
    require_keys: bool | None = None,
    insecure_no_auth: bool = False,
    token_secret: str | None = None,
    default_rate: str | None = None,
    cors_origins: tuple[str, ...] = (),
    agent_specs: tuple[str, ...] = (),
    chat_wait: float = DEFAULT_CHAT_WAIT,
    chat_lease: float = DEFAULT_CHAT_LEASE,
) -> dict[str, Any]:
    """``create_app`` keyword arguments for these flags; ConfigError for an unsafe mix."""
    from ..server.agents import load_agents
    from ..server.auth import Authenticator
    from ..server.keys import KeyStore, parse_rate

    if require_keys and insecure_no_auth:
        raise ConfigError("--require-keys and --insecure-no-auth contradict each other; drop one")
    if require_keys is None:  # keys in the store are meant to be asked for, loopback too
        require_keys = not insecure_no_auth and (not is_loopback(host) or bool(KeyStore(db).list()))
    if not require_keys and not is_loopback(host) and not insecure_no_auth:
        raise ConfigError(
            f"refusing to serve {host} without API keys: anyone who can reach it could read "
            "every session. Create a key (`praisondb keys create NAME --database-url ...`) "
            "and drop --no-require-keys, or pass --insecure-no-auth behind an authenticating "
            "proxy"
        )
    auth = None
    if require_keys:
        auth = Authenticator(db, token_secret=token_secret, default_rate=parse_rate(default_rate))
        if not KeyStore(db).list() and token_secret is None:
            click.echo(
                "warning: no API keys exist yet, so every request will be refused; "
                "make one with `praisondb keys create NAME --database-url ...`",
                err=True,
            )
    elif token_secret is not None or default_rate is not None:
        raise ConfigError("--token-secret and --rate need keys: add --require-keys")
    return {
        "auth": auth,
        "agents": load_agents(agent_specs),
        "chat_turns": ChatTurns(wait=chat_wait, lease=chat_lease),
        "cors_origins": cors_origins,
    }


def show_access_log() -> None:
    """Access lines to stderr (uvicorn's own access log is off: it prints query strings),
    and the chat turns' lines (a chat waiting for its session, a lease lost)."""
    for name, form in (("access", ACCESS_FORMAT), ("turns", TURNS_FORMAT)):
        logger = logging.getLogger(f"praisondb.server.{name}")
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(form))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


__all__ = ["app_options", "is_loopback", "security_options", "show_access_log"]
