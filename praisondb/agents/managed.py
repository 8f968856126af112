"""``ManagedAgent``: run an agent on Anthropic's managed-agents API, persist every turn.

Anthropic hosts the agent loop (model, tools, container); praisondb keeps the
record. Per turn the user message, each assistant message, each tool use and tool
result, and a ``Run`` (model, token usage, latency, status) are written through the
same repositories every other praisondb feature uses, so they land in whichever
backend the ``db`` URL names.

Remote objects are created once and reused:

* the remote agent and environment ids live in app-scoped state under a hash of the
  configuration (and API endpoint), created under a lease so two processes starting
  at once do not create duplicates;
* each local session maps to one remote session, stored in the local session's
  metadata (``managed_agent``), so a new process continues the same remote session;
  if that remote session is gone, a new one is created and the stored history is
  replayed into it (as a transcript block before the next prompt).

Custom tools (``type: custom``) run here, not remotely: when the agent calls one, the
handler given in ``tool_handlers`` runs at once and its result goes back as a
``user.custom_tool_result`` event, so the turn carries on until the agent ends it.

The ``anthropic`` package is imported only when an agent is built.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..adapter import DbSessionAdapter
from ..errors import ConfigError, NotFound, PraisonDBError, ValidationError
from ..facade import PraisonDB
from ..ids import new_id
from ..lifecycle import json_safe
from ..locks import Lease
from ..model import Event, Message, Run
from ..retry import Retry
from ..urls import redact_text

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger("praisondb.agents")
T = TypeVar("T")

DEFAULT_TIMEOUT = 120.0
METADATA_KEY = "managed_agent"
REMOTE_SCOPE = "app"
TOOLSET = "agent_toolset_20260401"
TRANSCRIPT_HEADER = (
    "Conversation so far (restored from storage because the previous remote session "
    "is gone; continue from here):"
)
PACKAGE_MANAGERS = ("apt", "cargo", "gem", "go", "npm", "pip")
DEFAULT_MAX_TOOL_CALLS = 32
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
CUSTOM_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema"})

ToolResult = str | Sequence[Mapping[str, Any]]
"""What a handler returns: text, or a list of ``{"type": "text", "text": ...}`` blocks."""
ToolHandler = Callable[[dict[str, Any]], ToolResult]
"""Runs one custom tool call: gets the call's input, returns its result."""


class ToolCallLimitExceeded(PraisonDBError):
    """The agent asked for more custom tool calls in one turn than ``max_tool_calls``."""


@dataclass(frozen=True)
class CustomTool:
    """A tool the agent may call but this process runs (the API's ``type: custom`` tool).

    ``input_schema`` is the JSON Schema of the call's input (``{"type": "object", ...}``).
    The definition is part of the remote agent, so it is part of the config fingerprint;
    the Python function that runs it is not (pass it as ``ManagedAgent(tool_handlers=...)``).
    """

    name: str
    description: str
    input_schema: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not TOOL_NAME.match(self.name):
            raise ConfigError(
                f"custom tool name {self.name!r} must be 1-128 letters, digits, '_' or '-'"
            )
        if not isinstance(self.description, str) or not self.description.strip():
            raise ConfigError(f"custom tool {self.name!r} needs a description")
        schema = self.input_schema
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            raise ConfigError(
                f"custom tool {self.name!r}: input_schema must be a JSON Schema with type 'object'"
            )

    @classmethod
    def from_mapping(cls, tool: Mapping[str, Any]) -> CustomTool:
        """Validate a ``{"type": "custom", ...}`` dict as the API would."""
        unknown = set(tool) - CUSTOM_TOOL_KEYS
        if unknown:
            raise ConfigError(f"custom tool has unknown fields {sorted(unknown)}")
        return cls(
            name=tool.get("name"),  # type: ignore[arg-type]  # checked in __post_init__
            description=tool.get("description"),  # type: ignore[arg-type]
            input_schema=tool.get("input_schema"),  # type: ignore[arg-type]
        )

    def params(self) -> dict[str, Any]:
        return {
            "type": "custom",
            "name": self.name,
            "description": self.description,
            "input_schema": json_safe(dict(self.input_schema)),
        }


@dataclass(frozen=True)
class ManagedConfig:
    """What to run remotely.

    ``tools``: tool definitions as the API takes them; the string ``"agent_toolset"``
    (or ``"default"``) enables Anthropic's built-in toolset (bash, files, web); a
    :class:`CustomTool` (or a ``{"type": "custom", ...}`` dict) declares a tool that
    ``ManagedAgent(tool_handlers=...)`` runs locally.
    ``packages``: pip package names, or ``{"pip": [...], "apt": [...], ...}``.
    """

    model: str
    system: str | None = None
    tools: Sequence[str | Mapping[str, Any] | CustomTool] = ()
    packages: Sequence[str] | Mapping[str, Sequence[str]] = ()
    name: str | None = None
    description: str | None = None
    networking: str = "unrestricted"
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("ManagedConfig.model must be a model name")
        if self.networking not in ("unrestricted", "limited"):
            raise ConfigError(
                f"networking must be 'unrestricted' or 'limited', not {self.networking!r}"
            )
        names = [t.name for t in self.custom_tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"custom tools declared more than once: {duplicates}")

    @property
    def custom_tools(self) -> tuple[CustomTool, ...]:
        """The declared custom tools (validated), whichever form they were given in."""
        found: list[CustomTool] = []
        for tool in self.tools:
            if isinstance(tool, CustomTool):
                found.append(tool)
            elif isinstance(tool, Mapping) and tool.get("type") == "custom":
                found.append(CustomTool.from_mapping(tool))
        return tuple(found)

    @property
    def agent_name(self) -> str:
        return self.name or "praisondb-agent"

    def agent_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "name": self.agent_name}
        if self.system is not None:
            params["system"] = self.system
        if self.description is not None:
            params["description"] = self.description
        tools = [_tool(t) for t in self.tools]
        if tools:
            params["tools"] = tools
        if self.metadata:
            params["metadata"] = dict(self.metadata)
        return params

    def environment_params(self) -> dict[str, Any]:
        if isinstance(self.packages, Mapping):
            unknown = set(self.packages) - set(PACKAGE_MANAGERS)
            if unknown:
                raise ConfigError(
                    f"unknown package managers {sorted(unknown)}; use {list(PACKAGE_MANAGERS)}"
                )
            packages = {k: list(v) for k, v in self.packages.items() if v}
        else:
            packages = {"pip": list(self.packages)} if self.packages else {}
        config: dict[str, Any] = {"type": "cloud", "networking": {"type": self.networking}}
        if packages:
            config["packages"] = {"type": "packages", **packages}
        return {"name": f"{self.agent_name}-env", "config": config}

    def fingerprint(self, endpoint: str = "") -> str:
        """Stable hash of everything that shapes the remote agent and environment."""
        blob = orjson.dumps(
            {"agent": self.agent_params(), "env": self.environment_params(), "at": endpoint},
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(blob).hexdigest()[:32]


def _tool(tool: str | Mapping[str, Any] | CustomTool) -> dict[str, Any]:
    if isinstance(tool, CustomTool):
        return tool.params()
    if isinstance(tool, str):
        if tool in ("agent_toolset", "default", TOOLSET):
            return {"type": TOOLSET}
        raise ConfigError(f"unknown tool shorthand {tool!r}; pass 'agent_toolset' or a dict")
    return dict(tool)


@dataclass
class _Turn:
    """What one turn produced, gathered while the event stream is consumed."""

    texts: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    status: str = "completed"
    error: str | None = None
    seen: set[str] = field(default_factory=set)
    streamed: dict[str, str] = field(default_factory=dict)
    tool_started: dict[str, tuple[str, float]] = field(default_factory=dict)
    done: bool = False
    remote_id: str = ""
    answered: set[str] = field(default_factory=set)
    """Custom tool use ids that have a result (sent by us, or found in the history)."""
    custom_calls: int = 0
    waiting_on: list[str] = field(default_factory=list)


class ManagedAgent:
    """An agent hosted by Anthropic whose sessions are stored in praisondb.

    ``db`` is a :class:`PraisonDB`, a :class:`DbSessionAdapter` or a URL (default:
    ``sqlite:///praisondb.db``). ``session_id`` is the local session to talk in (one is
    generated if omitted). ``base_url`` points the SDK elsewhere (a proxy, or the
    local test server). ``tool_handlers`` maps each custom tool declared in the config
    to the function that runs it; a turn may make at most ``max_tool_calls`` of those
    calls (a runaway tool loop raises :class:`ToolCallLimitExceeded`).
    """

    def __init__(
        self,
        provider: str = "anthropic",
        config: ManagedConfig | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        db: PraisonDB | DbSessionAdapter | str | None = None,
        session_id: str | None = None,
        base_url: str | None = None,
        *,
        user_id: str | None = None,
        retry: Retry | None = None,
        tool_handlers: Mapping[str, ToolHandler] | None = None,
        max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
    ) -> None:
        if provider != "anthropic":
            raise ConfigError(f"provider {provider!r} is not supported; use 'anthropic'")
        if config is None:
            raise ConfigError("ManagedAgent needs config=ManagedConfig(model=...)")
        self.tool_handlers = _check_handlers(config, tool_handlers or {})
        if isinstance(max_tool_calls, bool) or not isinstance(max_tool_calls, int):
            raise ConfigError("max_tool_calls must be an integer")
        if max_tool_calls < 1:
            raise ConfigError("max_tool_calls must be at least 1")
        self.max_tool_calls = max_tool_calls
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ConfigError(
                "no Anthropic API key: pass api_key=... or set ANTHROPIC_API_KEY "
                "(nothing was sent to the API)"
            )
        self.provider = provider
        self.config = config
        self.timeout = timeout
        self.base_url = (
            base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
        )
        self.retry = retry or Retry(attempts=4, base_delay=0.2, max_delay=5.0)
        self.user_id = user_id
        self.session_id = session_id
        if isinstance(db, DbSessionAdapter):
            self.adapter, self._owns_db = db, False
        elif isinstance(db, PraisonDB):
            self.adapter, self._owns_db = DbSessionAdapter(db), False
        else:
            self.adapter, self._owns_db = (
                DbSessionAdapter(db or PraisonDB()),
                db is None or isinstance(db, str),
            )
        self.db = self.adapter.db
        self._api_key = key
        self._client: anthropic.Anthropic | None = None
        self._remote: tuple[str, str] | None = None
        self._verified: set[str] = set()

    def __repr__(self) -> str:
        return f"ManagedAgent(model={self.config.model!r}, session_id={self.session_id!r})"

    # -- the SDK ------------------------------------------------------------------------
    @property
    def client(self) -> anthropic.Anthropic:
        if self._client is None:
            try:
                import anthropic
            except ImportError as exc:
                raise ConfigError(
                    "ManagedAgent needs the anthropic SDK: pip install 'praisondb[anthropic]'"
                ) from exc
            # Retries are ours (see _call), so the SDK must not retry underneath them.
            self._client = anthropic.Anthropic(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
            )
        return self._client

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """One API call: transient failures retried with backoff, errors given praisondb types."""
        import anthropic

        try:
            return self.retry.call(fn, transient=_transient, url=self.base_url, action=action)
        except anthropic.AuthenticationError as exc:
            raise ConfigError(
                f"Anthropic rejected the API key while trying to {action} (401): check "
                "api_key / ANTHROPIC_API_KEY"
            ) from exc
        except anthropic.PermissionDeniedError as exc:
            raise ConfigError(f"this API key may not {action} (403): {_message(exc)}") from exc
        except anthropic.NotFoundError as exc:
            raise NotFound(f"{action}: {_message(exc)}") from exc
        except anthropic.APIStatusError as exc:
            raise ValidationError(f"{action} failed ({exc.status_code}): {_message(exc)}") from exc

    # -- remote agent, environment and session ---------------------------------------
    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint(self.base_url)

    def _state_key(self) -> str:
        return f"managed:{self.provider}:{self.fingerprint}"

    def remote_ids(self) -> tuple[str, str]:
        """(agent id, environment id), created on first use and shared through app state."""
        if self._remote is not None:
            return self._remote
        key = self._state_key()
        stored = self.db.state.get(key, scope=REMOTE_SCOPE)
        if not _valid_ids(stored):
            with Lease(self.db, key, timeout=self.timeout, ttl=max(self.timeout, 30.0)):
                stored = self.db.state.get(key, scope=REMOTE_SCOPE)
                if not _valid_ids(stored):
                    stored = self._create_remote()
                    self.db.state.set(key, stored, scope=REMOTE_SCOPE)
        self._remote = (stored["agent_id"], stored["environment_id"])
        return self._remote

    def _create_remote(self) -> dict[str, Any]:
        beta = self.client.beta
        agent = self._call("create agent", lambda: beta.agents.create(**self.config.agent_params()))
        env = self._call(
            "create environment",
            lambda: beta.environments.create(**self.config.environment_params()),
        )
        log.info("created remote agent %s and environment %s", agent.id, env.id)
        return {"agent_id": agent.id, "environment_id": env.id, "model": self.config.model}

    def _forget_remote(self) -> None:
        self._remote = None
        self.db.state.delete(self._state_key(), scope=REMOTE_SCOPE)

    def _mapping(self, session_id: str) -> dict[str, Any]:
        found = self.adapter.get_metadata(session_id).get(METADATA_KEY)
        return found if isinstance(found, dict) else {}

    def _new_remote_session(self, session_id: str) -> str:
        agent_id, env_id = self.remote_ids()
        beta = self.client.beta

        def create() -> Any:
            return beta.sessions.create(
                agent=agent_id, environment_id=env_id, title=session_id[:200]
            )

        try:
            remote = self._call("create session", create)
        except NotFound:  # the cached agent/environment is gone remotely: make new ones
            self._forget_remote()
            agent_id, env_id = self.remote_ids()
            remote = self._call("create session", create)
        self.adapter.set_metadata(
            session_id,
            {
                METADATA_KEY: {
                    "provider": self.provider,
                    "remote_session_id": remote.id,
                    "agent_id": agent_id,
                    "environment_id": env_id,
                    "fingerprint": self.fingerprint,
                    "model": self.config.model,
                }
            },
        )
        self._verified.add(remote.id)
        return str(remote.id)

    def _remote_session(self, session_id: str) -> tuple[str, list[Message]]:
        """The remote session for ``session_id`` and any history to replay into it."""
        mapping = self._mapping(session_id)
        remote_id = mapping.get("remote_session_id")
        if isinstance(remote_id, str) and mapping.get("fingerprint") == self.fingerprint:
            if remote_id in self._verified or self._remote_alive(remote_id):
                self._verified.add(remote_id)
                return remote_id, []
            log.warning("remote session %s is gone; replaying stored history", remote_id)
        history = [
            m for m in self.db.messages.iterate(session_id) if m.role in ("user", "assistant")
        ]
        return self._new_remote_session(session_id), history

    def _remote_alive(self, remote_id: str) -> bool:
        try:
            remote = self._call(
                "retrieve session", lambda: self.client.beta.sessions.retrieve(remote_id)
            )
        except NotFound:
            return False
        return remote.status != "terminated" and remote.archived_at is None

    # -- turns ----------------------------------------------------------------------------
    def _local_session(self, session_id: str | None) -> str:
        sid = session_id or self.session_id or new_id()
        if self.session_id is None:
            self.session_id = sid
        self.db.sessions.get_or_create(sid, user_id=self.user_id, agent=self.config.agent_name)
        return sid

    def run(self, prompt: str, session_id: str | None = None) -> str:
        """Send ``prompt``, wait until the agent is idle, return its reply text."""
        texts: list[str] = []
        for _ in self._turn(prompt, session_id, texts):
            pass
        return "\n\n".join(texts)

    def stream(self, prompt: str, session_id: str | None = None) -> Iterator[str]:
        """Like :meth:`run`, but yield reply text as it arrives."""
        return self._turn(prompt, session_id, [])

    def _turn(self, prompt: str, session_id: str | None, texts: list[str]) -> Iterator[str]:
        if not isinstance(prompt, str) or not prompt:
            raise ValidationError("prompt must be a non-empty string")
        sid = self._local_session(session_id)
        remote_id, replay = self._remote_session(sid)
        content: list[dict[str, Any]] = []
        if replay:
            content.append({"type": "text", "text": transcript(replay)})
        content.append({"type": "text", "text": prompt})
        run = self.db.runs.start(
            sid,
            model=self.config.model,
            metadata={
                "provider": self.provider,
                "remote_session_id": remote_id,
                "input": prompt,
                "replayed_messages": len(replay),
            },
        )
        self.db.messages.append(
            sid, "user", prompt, {METADATA_KEY: {"remote_session_id": remote_id}}, run_id=run.id
        )
        started = time.perf_counter()
        turn = _Turn(remote_id=remote_id)
        try:
            yield from self._exchange(sid, remote_id, run, content, turn)
        except BaseException as exc:
            turn.status = "cancelled" if isinstance(exc, GeneratorExit) else "error"
            turn.error = redact_text(f"{type(exc).__name__}: {exc}")
            self._finish(sid, run, turn, started)
            raise
        texts.extend(turn.texts)
        self._finish(sid, run, turn, started)

    def _finish(self, sid: str, run: Run, turn: _Turn, started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        self.db.runs.end(
            run.id,
            status=turn.status,
            input_tokens=turn.input_tokens,
            output_tokens=turn.output_tokens,
            error=turn.error,
            metadata={
                "latency_ms": round(latency_ms, 3),
                "tool_calls": turn.tool_calls,
                "output": "\n\n".join(turn.texts),
                **({"waiting_on": turn.waiting_on} if turn.waiting_on else {}),
            },
        )
        if turn.status == "error":
            self.db._emit(
                Event(
                    "error",
                    session_id=sid,
                    model=self.config.model,
                    latency_ms=latency_ms,
                    status="error",
                    attributes={"run_id": run.id, "error": turn.error or ""},
                )
            )

    def _exchange(
        self, sid: str, remote_id: str, run: Run, content: list[dict[str, Any]], turn: _Turn
    ) -> Iterator[str]:
        """Open the event stream, send the message, consume events until idle.

        The stream is opened before sending so no event can slip by. If it drops
        mid-turn, it is reopened and the session's event history fills the gap.
        """
        events = self.client.beta.sessions.events
        stream = self._call(
            "open event stream",
            lambda: events.stream(remote_id, event_deltas=["agent.message"]),
        )
        message: Any = {"type": "user.message", "content": content}
        try:
            sent = self._call("send message", lambda: events.send(remote_id, events=[message]))
        except BaseException:
            stream.close()
            raise
        user_event_id = sent.data[0].id if sent.data else None
        reconnects = 0
        while True:
            try:
                with stream:
                    for event in stream:
                        yield from self._handle(sid, run, event, turn)
                        if turn.done:
                            return
            except Exception as exc:
                if not _transient(exc) or reconnects >= self.retry.attempts:
                    raise
                reconnects += 1
                log.warning("event stream dropped (%s); reconnecting", type(exc).__name__)
            else:
                if turn.done:
                    return
                reconnects += 1
                if reconnects > self.retry.attempts:
                    raise PraisonDBError("the event stream ended before the agent went idle")
            stream = self._call(
                "reopen event stream",
                lambda: events.stream(remote_id, event_deltas=["agent.message"]),
            )
            try:
                history = self._call("list events", lambda: list(events.list(remote_id)))
                turn.answered.update(_results_in(history))  # never run those again
                after = False
                for event in history:
                    if user_event_id is None or event.id == user_event_id:
                        after = True
                        continue
                    if after:
                        yield from self._handle(sid, run, event, turn)
                        if turn.done:
                            stream.close()
                            return
            except BaseException:  # a failing replay must not leak the reopened stream
                stream.close()
                raise

    def _handle(self, sid: str, run: Run, event: Any, turn: _Turn) -> Iterator[str]:
        kind = getattr(event, "type", None)
        if kind == "event_delta":
            delta = getattr(event, "delta", None)
            piece = getattr(getattr(delta, "content", None), "text", None)
            if isinstance(piece, str) and event.event_id not in turn.seen:
                turn.streamed[event.event_id] = turn.streamed.get(event.event_id, "") + piece
                yield piece
            return
        event_id = getattr(event, "id", None)
        if event_id is None or event_id in turn.seen:
            return
        turn.seen.add(event_id)
        if kind == "agent.message":
            text = "".join(b.text for b in event.content if getattr(b, "type", None) == "text")
            shown = turn.streamed.pop(event_id, "")
            if text.startswith(shown):
                rest = text[len(shown) :]
                if rest:
                    yield rest
            else:  # the preview diverged; the final event is authoritative
                yield text
            turn.texts.append(text)
            self.db.messages.append(
                sid, "assistant", text, {METADATA_KEY: {"event_id": event_id}}, run_id=run.id
            )
        elif kind in ("agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use"):
            name = str(getattr(event, "name", None) or getattr(event, "tool_name", "tool"))
            args = json_safe(getattr(event, "input", {}) or {})
            turn.tool_started[event_id] = (name, time.perf_counter())
            self.db.messages.append(
                sid,
                "assistant",
                [{"type": "tool_use", "id": event_id, "name": name, "input": args}],
                {METADATA_KEY: {"event_id": event_id, "kind": kind}},
                run_id=run.id,
            )
            if kind == "agent.custom_tool_use":
                self._answer(sid, run, event_id, name, args, turn)
        elif kind in ("agent.tool_result", "agent.mcp_tool_result"):
            use_id = str(
                getattr(event, "tool_use_id", None) or getattr(event, "mcp_tool_use_id", "")
            )
            blocks = [json_safe(b.model_dump()) for b in (getattr(event, "content", None) or [])]
            is_error = bool(getattr(event, "is_error", False))
            self._record_result(sid, run, turn, use_id, event_id, blocks, is_error)
        elif kind == "user.custom_tool_result":
            turn.answered.add(str(event.custom_tool_use_id))
        elif kind == "span.model_request_end":
            usage = getattr(event, "model_usage", None)
            turn.input_tokens += int(getattr(usage, "input_tokens", 0) or 0)
            turn.output_tokens += int(getattr(usage, "output_tokens", 0) or 0)
        elif kind == "session.error":
            error = getattr(event, "error", None)
            message = str(getattr(error, "message", "") or getattr(error, "type", "session error"))
            turn.error = message
            self.db._emit(
                Event(
                    "error",
                    session_id=sid,
                    model=self.config.model,
                    status="session.error",
                    attributes={"run_id": run.id, "error": message},
                )
            )
        elif kind == "session.status_idle":
            stop = getattr(event, "stop_reason", None)
            reason = getattr(stop, "type", "end_turn")
            if reason == "requires_action":
                waiting = [
                    str(i) for i in getattr(stop, "event_ids", None) or [] if i not in turn.answered
                ]
                if not waiting:
                    return  # only on custom tool calls already answered: the agent resumes
                turn.status = "requires_action"
                turn.waiting_on = waiting
            elif reason != "end_turn":
                turn.status = str(reason)
            turn.done = True
        elif kind == "session.status_terminated":
            turn.status = "error" if turn.error else "terminated"
            turn.done = True
        elif kind == "session.deleted":
            raise NotFound("the remote session was deleted during the turn")

    def _answer(self, sid: str, run: Run, use_id: str, name: str, args: Any, turn: _Turn) -> None:
        """Run the handler for one ``agent.custom_tool_use`` and send its result back.

        A call without a handler is left alone: the session then goes idle with
        ``requires_action`` on it, which ends the turn. A use id is answered at most
        once per turn, whatever a reconnect replays.
        """
        handler = self.tool_handlers.get(name)
        if handler is None or use_id in turn.answered:
            return
        if turn.custom_calls >= self.max_tool_calls:
            self._interrupt(turn.remote_id)
            raise ToolCallLimitExceeded(
                f"the agent asked for more than max_tool_calls={self.max_tool_calls} custom "
                f"tool calls in one turn (next: {name!r}); the remote agent was interrupted"
            )
        turn.custom_calls += 1
        turn.answered.add(use_id)
        blocks, is_error = _run_handler(handler, name, args if isinstance(args, dict) else {})
        result: dict[str, Any] = {
            "type": "user.custom_tool_result",
            "custom_tool_use_id": use_id,
            "content": blocks,
            "is_error": is_error,
        }
        events = self.client.beta.sessions.events
        try:
            sent = self._call(
                "send custom tool result",
                lambda: events.send(turn.remote_id, events=[result]),  # type: ignore[list-item]
            )
            result_id = str(sent.data[0].id) if sent.data else None
        except ValidationError:
            # A retry after a lost reply is refused (the call is already answered): the
            # first send went through if the session's history holds our result.
            history = self._call("list events", lambda: list(events.list(turn.remote_id)))
            result_id = _results_in(history).get(use_id)
            if result_id is None:
                raise
        self._record_result(sid, run, turn, use_id, result_id, blocks, is_error)

    def _interrupt(self, remote_id: str) -> None:
        """Best effort: pause the remote agent so it does not wait on an unanswered call."""
        interrupt: Any = {"type": "user.interrupt"}
        try:
            self.client.beta.sessions.events.send(remote_id, events=[interrupt])
        except Exception as exc:  # noqa: BLE001 - the turn is failing for a clearer reason
            log.warning("could not interrupt remote session %s: %s", remote_id, exc)

    def _record_result(
        self,
        sid: str,
        run: Run,
        turn: _Turn,
        use_id: str,
        event_id: str | None,
        blocks: list[dict[str, Any]],
        is_error: bool,
    ) -> None:
        """Store a tool result as a ``tool`` message and count it (analytics ``tool_call``)."""
        name, began = turn.tool_started.pop(use_id, ("tool", time.perf_counter()))
        text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        turn.tool_calls += 1
        self.db.messages.append(
            sid,
            "tool",
            text if text or not blocks else blocks,
            {
                "tool_name": name,
                "tool_use_id": use_id,
                "is_error": is_error,
                METADATA_KEY: {"event_id": event_id, "content": blocks},
            },
            run_id=run.id,
        )
        self.db._emit(
            Event(
                "tool_call",
                session_id=sid,
                model=self.config.model,
                tool=name,
                latency_ms=(time.perf_counter() - began) * 1000,
                status="error" if is_error else "ok",
                attributes={"run_id": run.id, "tool_use_id": use_id},
            )
        )

    # -- inspection ------------------------------------------------------------------------
    def retrieve_session(self, session_id: str | None = None) -> dict[str, Any]:
        """``{"id", "status", "title", "usage": {"input_tokens", "output_tokens"}}`` of the
        remote session (``id`` None and status ``"none"`` before the first turn)."""
        sid = session_id or self.session_id
        remote_id = self._mapping(sid).get("remote_session_id") if sid else None
        empty = {"input_tokens": 0, "output_tokens": 0}
        if not isinstance(remote_id, str):
            return {"id": None, "status": "none", "title": None, "usage": empty}
        try:
            remote = self._call(
                "retrieve session", lambda: self.client.beta.sessions.retrieve(remote_id)
            )
        except NotFound:
            return {"id": remote_id, "status": "missing", "title": None, "usage": empty}
        usage = remote.usage
        return {
            "id": remote.id,
            "status": remote.status,
            "title": remote.title,
            "usage": {
                "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
                "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
            },
        }

    def history(self, session_id: str | None = None) -> list[Message]:
        sid = session_id or self.session_id
        return self.db.messages.list(sid) if sid else []

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> ManagedAgent:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def transcript(messages: Sequence[Message]) -> str:
    """Stored history as one text block: ``[user] ...`` / ``[assistant] ...`` paragraphs."""
    lines = [TRANSCRIPT_HEADER, ""]
    for message in messages:
        content = message.content
        text = (
            content
            if isinstance(content, str)
            else " ".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
        )
        if text:
            lines.extend([f"[{message.role}] {text}", ""])
    return "\n".join(lines).rstrip()


def _check_handlers(
    config: ManagedConfig, handlers: Mapping[str, ToolHandler]
) -> dict[str, ToolHandler]:
    """Every declared custom tool has a callable handler, and every handler a tool."""
    declared = [t.name for t in config.custom_tools]
    missing = [n for n in declared if n not in handlers]
    if missing:
        raise ConfigError(
            f"custom tools {missing} are declared in ManagedConfig.tools but have no handler: "
            f"pass tool_handlers={{{missing[0]!r}: function, ...}}"
        )
    extra = sorted(set(handlers) - set(declared))
    if extra:
        raise ConfigError(
            f"tool_handlers names tools {extra} that ManagedConfig.tools does not declare: "
            "add CustomTool(name=..., description=..., input_schema=...) for each"
        )
    wrong = sorted(n for n, fn in handlers.items() if not callable(fn))
    if wrong:
        raise ConfigError(f"tool_handlers for {wrong} are not callable")
    return dict(handlers)


def _run_handler(
    handler: ToolHandler, name: str, args: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """(content blocks, is_error): a failing handler becomes an error result, never a crash."""
    try:
        result = handler(dict(args))
    except Exception as exc:  # noqa: BLE001 - the model is told, the turn goes on
        log.warning("custom tool %r failed: %s", name, type(exc).__name__)
        return [_text(_scrub(f"{type(exc).__name__}: {exc}"))], True
    blocks = _result_blocks(result)
    if blocks is None:
        return [
            _text(
                f"TypeError: the handler for {name!r} returned {type(result).__name__}; "
                "return a str or a list of text blocks"
            )
        ], True
    return blocks, False


def _scrub(text: str) -> str:
    """``text`` with the secrets of every URL in it redacted (it is sent to the model)."""
    return redact_text(text, *URL_IN_TEXT.findall(text))


def _results_in(history: Sequence[Any]) -> dict[str, str]:
    """Custom tool use id -> id of the ``user.custom_tool_result`` answering it."""
    return {
        str(event.custom_tool_use_id): str(event.id)
        for event in history
        if getattr(event, "type", None) == "user.custom_tool_result"
    }


def _result_blocks(result: object) -> list[dict[str, Any]] | None:
    if isinstance(result, str):
        return [_text(result)] if result else []
    if isinstance(result, Sequence) and not isinstance(result, (bytes, bytearray)):
        blocks = []
        for block in result:
            if not (
                isinstance(block, Mapping)
                and block.get("type") == "text"
                and isinstance(block.get("text"), str)
            ):
                return None
            blocks.append(_text(block["text"]))
        return blocks
    return None


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _valid_ids(stored: Any) -> bool:
    return (
        isinstance(stored, dict)
        and isinstance(stored.get("agent_id"), str)
        and isinstance(stored.get("environment_id"), str)
    )


def _transient(exc: BaseException) -> bool:
    """Worth retrying: rate limits, server errors, dropped or timed-out connections."""
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError))


def _message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))[:300]
    return str(exc)[:300]
