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

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ...adapter import DbSessionAdapter
from ...coerce import json_safe
from ...core.locks import Lease
from ...errors import (
    ConfigError,
    NotFound,
    PraisonDBError,
    ToolCallLimitExceeded,
    ValidationError,
)
from ...facade import PraisonDB
from ...ids import new_id
from ...model import Event, Message, Run
from ...retry import Retry
from ...urls import redact_text
from ...validation import check_id
from . import events
from .config import ManagedConfig
from .events import METADATA_KEY, Turn
from .remote import call_api, describe, transcript, transient, valid_ids
from .tools import ToolHandler, check_handlers, results_in, run_handler

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger("praisondb.agents")
T = TypeVar("T")

DEFAULT_TIMEOUT = 120.0
REMOTE_SCOPE = "app"
DEFAULT_MAX_TOOL_CALLS = 32


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
        self.tool_handlers = check_handlers(config, tool_handlers or {})
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
        return call_api(self.retry, self.base_url, action, fn)

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
        if not valid_ids(stored):
            with Lease(self.db, key, timeout=self.timeout, ttl=max(self.timeout, 30.0)):
                stored = self.db.state.get(key, scope=REMOTE_SCOPE)
                if not valid_ids(stored):
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

    def _mapping(self, session_id: str, key: str = METADATA_KEY) -> dict[str, Any]:
        found = self.adapter.get_metadata(session_id).get(key)
        return found if isinstance(found, dict) else {}

    def _new_remote_session(self, session_id: str, key: str = METADATA_KEY) -> str:
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
                key: {
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

    def _remote_session(self, sid: str, agent: str | None = None) -> tuple[str, list[Message]]:
        """The remote session for ``sid`` and any history to replay into it; each named
        ``agent`` has its own (key ``managed_agent:<name>``), fed the whole history."""
        session_id, key = sid, METADATA_KEY if agent is None else f"{METADATA_KEY}:{agent}"
        mapping = self._mapping(session_id, key)
        remote_id = mapping.get("remote_session_id")
        if isinstance(remote_id, str) and mapping.get("fingerprint") == self.fingerprint:
            if remote_id in self._verified or self._remote_alive(remote_id):
                self._verified.add(remote_id)
                return remote_id, []
            log.warning("remote session %s is gone; replaying stored history", remote_id)
        history = [
            m for m in self.db.messages.iterate(session_id) if m.role in ("user", "assistant")
        ]
        return self._new_remote_session(session_id, key), history

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

    def run(self, prompt: str, session_id: str | None = None, *, agent: str | None = None) -> str:
        """Send ``prompt``, wait until the agent is idle, return its reply text; ``agent``
        names who the turn's messages are attributed to (see ``Session.run_agent``)."""
        texts: list[str] = []
        for _ in self._turn(prompt, session_id, texts, agent):
            pass
        return "\n\n".join(texts)

    def stream(
        self, prompt: str, session_id: str | None = None, *, agent: str | None = None
    ) -> Iterator[str]:
        """Like :meth:`run`, but yield reply text as it arrives."""
        return self._turn(prompt, session_id, [], agent)

    def _turn(
        self, prompt: str, session_id: str | None, texts: list[str], agent: str | None = None
    ) -> Iterator[str]:
        if not isinstance(prompt, str) or not prompt:
            raise ValidationError("prompt must be a non-empty string")
        agent = None if agent is None else check_id(agent, "agent")
        sid = self._local_session(session_id)
        remote_id, replay = self._remote_session(sid, agent)
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
                "agent": agent,
            },
        )
        turn = Turn(remote_id=remote_id, agent=agent)
        meta = turn.tagged({METADATA_KEY: {"remote_session_id": remote_id}})
        self.db.messages.append(sid, "user", prompt, meta, run_id=run.id)
        started = time.perf_counter()
        try:
            yield from self._exchange(sid, remote_id, run, content, turn)
        except BaseException as exc:
            turn.status = "cancelled" if isinstance(exc, GeneratorExit) else "error"
            turn.error = redact_text(f"{type(exc).__name__}: {exc}")
            self._finish(sid, run, turn, started)
            raise
        texts.extend(turn.texts)
        self._finish(sid, run, turn, started)

    def _finish(self, sid: str, run: Run, turn: Turn, started: float) -> None:
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
            self.db.events.emit(
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
        self, sid: str, remote_id: str, run: Run, content: list[dict[str, Any]], turn: Turn
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
                if not transient(exc) or reconnects >= self.retry.attempts:
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
                turn.answered.update(results_in(history))  # never run those again
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

    def _handle(self, sid: str, run: Run, event: Any, turn: Turn) -> Iterator[str]:
        """One event of the stream: text to show is yielded, what happened is recorded."""
        kind = getattr(event, "type", None)
        if kind == "event_delta":
            yield from events.preview(event, turn)
            return
        event_id = getattr(event, "id", None)
        if event_id is None or event_id in turn.seen:
            return
        turn.seen.add(event_id)
        if kind in _RECORDERS:
            yield from _RECORDERS[kind](self, sid, run, event, turn)
        else:
            events.observe(kind, event, turn)

    def _on_message(self, sid: str, run: Run, event: Any, turn: Turn) -> Iterator[str]:
        text = yield from events.final_text(event, turn)
        meta = turn.tagged({METADATA_KEY: {"event_id": event.id}})
        self.db.messages.append(sid, "assistant", text, meta, run_id=run.id)

    def _on_tool_use(self, sid: str, run: Run, event: Any, turn: Turn) -> Iterator[str]:
        event_id, kind = event.id, event.type
        name = str(getattr(event, "name", None) or getattr(event, "tool_name", "tool"))
        args = json_safe(getattr(event, "input", {}) or {})
        turn.tool_started[event_id] = (name, time.perf_counter())
        self.db.messages.append(
            sid,
            "assistant",
            [{"type": "tool_use", "id": event_id, "name": name, "input": args}],
            turn.tagged({METADATA_KEY: {"event_id": event_id, "kind": kind}}),
            run_id=run.id,
        )
        if kind == "agent.custom_tool_use":
            self._answer(sid, run, event_id, name, args, turn)
        return iter(())

    def _on_tool_result(self, sid: str, run: Run, event: Any, turn: Turn) -> Iterator[str]:
        use_id = str(getattr(event, "tool_use_id", None) or getattr(event, "mcp_tool_use_id", ""))
        blocks = [json_safe(b.model_dump()) for b in (getattr(event, "content", None) or [])]
        is_error = bool(getattr(event, "is_error", False))
        self._record_result(sid, run, turn, use_id, event.id, blocks, is_error)
        return iter(())

    def _on_session_error(self, sid: str, run: Run, event: Any, turn: Turn) -> Iterator[str]:
        error = getattr(event, "error", None)
        message = str(getattr(error, "message", "") or getattr(error, "type", "session error"))
        turn.error = message
        self.db.events.emit(
            Event(
                "error",
                session_id=sid,
                model=self.config.model,
                status="session.error",
                attributes={"run_id": run.id, "error": message},
            )
        )
        return iter(())

    def _answer(self, sid: str, run: Run, use_id: str, name: str, args: Any, turn: Turn) -> None:
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
        blocks, is_error = run_handler(handler, name, args if isinstance(args, dict) else {})
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
            result_id = results_in(history).get(use_id)
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
        turn: Turn,
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
            turn.tagged(
                {
                    "tool_name": name,
                    "tool_use_id": use_id,
                    "is_error": is_error,
                    METADATA_KEY: {"event_id": event_id, "content": blocks},
                }
            ),
            run_id=run.id,
        )
        self.db.events.emit(
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
        if not isinstance(remote_id, str):
            return describe(None)
        try:
            return describe(
                self._call(
                    "retrieve session", lambda: self.client.beta.sessions.retrieve(remote_id)
                )
            )
        except NotFound:
            return describe(None, remote_id)

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


_Recorder = Callable[[ManagedAgent, str, Run, Any, Turn], Iterator[str]]
_RECORDERS: dict[str, _Recorder] = {
    "agent.message": ManagedAgent._on_message,
    "agent.tool_use": ManagedAgent._on_tool_use,
    "agent.mcp_tool_use": ManagedAgent._on_tool_use,
    "agent.custom_tool_use": ManagedAgent._on_tool_use,
    "agent.tool_result": ManagedAgent._on_tool_result,
    "agent.mcp_tool_result": ManagedAgent._on_tool_result,
    "session.error": ManagedAgent._on_session_error,
}
"""Events that are stored; the rest only change the turn (see :func:`events.observe`)."""
