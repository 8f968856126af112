"""A local stand-in for Anthropic's managed-agents API, for tests and the offline demo.

It speaks the endpoints the ``anthropic`` SDK (2.x) calls under ``client.beta``:
``POST/GET /v1/agents``, ``POST/GET /v1/environments``, ``POST/GET/DELETE
/v1/sessions``, ``POST/GET /v1/sessions/{id}/events`` and the Server-Sent-Events
stream ``GET /v1/sessions/{id}/events/stream`` (with ``event_deltas`` previews),
using the SDK's JSON shapes and ``event: <type>`` / ``data: <json>`` framing. It
records every request it receives, checks the API key (``x-api-key`` or a
``Bearer`` authorization header, which SDK 2.x sends), and can be told
to fail (status codes or dropped connections) so retry paths can be tested.

The "agent" is a script: it answers each user message with a deterministic reply
(and a tool call when the message asks for one), so conversations are repeatable.
``call: <tool> {json input}`` in a message makes it call a custom (client-side) tool,
the way the real API does: it emits ``agent.custom_tool_use``, goes idle with
``stop_reason: requires_action``, waits for the matching ``user.custom_tool_result``
(an unknown id is a 400) and ends its reply with what each tool returned. It calls the
named tool whether or not the agent declared it, so clients can be tested against a
model asking for a tool they do not have.
It ships inside the package because ``praisondb demo`` uses it when no API key is set.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from .handler import Handler
from .model import (
    FAKE_API_KEY,
    TRANSCRIPT_MARK,
    USER_EVENTS,
    Fault,
    RecordedRequest,
    Rejected,
    RemoteSession,
    Reply,
    check_tool,
    custom_calls,
    default_reply,
    error_body,
    now_iso,
    pieces,
    resolve_tool,
    tool_request,
)


class FakeManagedAgentsServer:
    """``with FakeManagedAgentsServer() as server: Anthropic(base_url=server.url, ...)``."""

    def __init__(
        self,
        api_key: str = FAKE_API_KEY,
        *,
        reply: Reply = default_reply,
        step_delay: float = 0.005,
    ) -> None:
        self.api_key = api_key
        self.reply = reply
        self.step_delay = step_delay
        self.requests: list[RecordedRequest] = []
        self.agents: dict[str, dict[str, Any]] = {}
        self.environments: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, RemoteSession] = {}
        self._faults: list[Fault] = []
        self._stream_breaks: list[int] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeManagedAgentsServer:
        handler = type("Handler", (Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._changed.notify_all()
            for session in self.sessions.values():
                for q, _ in session.subscribers:
                    q.put(None)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeManagedAgentsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, method: str, path: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``method`` and the ``path`` regex
        with ``status`` (0: drop the connection; -1: do the work, then drop it)."""
        with self._lock:
            self._faults.append(Fault(method.upper(), re.compile(path), status, times))

    def break_next_stream(self, after_events: int) -> None:
        """Drop the next event stream connection after it has sent ``after_events`` events."""
        with self._lock:
            self._stream_breaks.append(after_events)

    def forget_session(self, session_id: str) -> None:
        """Make a remote session vanish, as if it expired or was deleted elsewhere."""
        with self._lock:
            self.sessions.pop(session_id, None)

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        regex = re.compile(pattern)
        with self._lock:
            return [r for r in self.requests if r.method == method and regex.search(r.path)]

    # -- the API --------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{int(time.time() * 1000) % 100000:05d}"

    def _fault_for(self, method: str, path: str) -> int | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.path.search(path) and fault.times > 0:
                    fault.times -= 1
                    return fault.status
        return None

    def create_agent(self, body: dict[str, Any]) -> dict[str, Any]:
        now = now_iso()
        model = body.get("model")
        for tool in body.get("tools") or []:
            check_tool(tool)
        tools = [resolve_tool(t) for t in body.get("tools") or []]
        agent: dict[str, Any] = {
            "id": self._id("agent"),
            "type": "agent",
            "name": body.get("name"),
            "description": body.get("description"),
            "model": model if isinstance(model, dict) else {"id": model},
            "system": body.get("system"),
            "tools": tools,
            "skills": body.get("skills") or [],
            "mcp_servers": body.get("mcp_servers") or [],
            "metadata": body.get("metadata") or {},
            "execution_identity": {"type": "service_account"},
            "multiagent": None,
            "archived_at": None,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        with self._lock:
            self.agents[agent["id"]] = agent
        return agent

    def create_environment(self, body: dict[str, Any]) -> dict[str, Any]:
        now = now_iso()
        config = dict(body.get("config") or {"type": "cloud"})
        packages = dict(config.get("packages") or {})
        config["packages"] = {
            **{k: list(packages.get(k) or []) for k in ("apt", "cargo", "gem", "go", "npm", "pip")},
            "type": "packages",
        }
        config.setdefault("networking", {"type": "unrestricted"})
        environment: dict[str, Any] = {
            "id": self._id("env"),
            "type": "environment",
            "name": body.get("name"),
            "description": body.get("description"),
            "config": config,
            "metadata": body.get("metadata") or {},
            "scope": body.get("scope"),
            "archived_at": None,
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self.environments[environment["id"]] = environment
        return environment

    def create_session(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        agent_ref = body.get("agent")
        agent_id = agent_ref.get("id") if isinstance(agent_ref, dict) else agent_ref
        with self._lock:
            agent = self.agents.get(str(agent_id))
            if agent is None:
                return 404, error_body("not_found_error", f"agent {agent_id} not found")
            if body.get("environment_id") not in self.environments:
                return 404, error_body("not_found_error", "environment not found")
            now = now_iso()
            snapshot = {
                k: agent[k]
                for k in (
                    "id",
                    "description",
                    "execution_identity",
                    "mcp_servers",
                    "model",
                    "multiagent",
                    "name",
                    "skills",
                    "system",
                    "tools",
                    "type",
                    "version",
                )
            }
            data = {
                "id": self._id("sesn"),
                "type": "session",
                "agent": snapshot,
                "environment_id": body["environment_id"],
                "title": body.get("title"),
                "metadata": body.get("metadata") or {},
                "status": "idle",
                "usage": {"input_tokens": 0, "output_tokens": 0},
                "stats": {"active_seconds": 0.0, "duration_seconds": 0.0},
                "resources": [],
                "outcome_evaluations": [],
                "vault_ids": [],
                "budget": None,
                "archived_at": None,
                "created_at": now,
                "updated_at": now,
            }
            self.sessions[data["id"]] = RemoteSession(data)
        return 200, data

    def session(self, session_id: str) -> RemoteSession | None:
        with self._lock:
            return self.sessions.get(session_id)

    def publish(
        self, session: RemoteSession, event: dict[str, Any], *, delta: bool = False
    ) -> None:
        with self._lock:
            if not delta:
                session.events.append(event)
            subscribers = list(session.subscribers)
        for q, wants_deltas in subscribers:
            if not delta or wants_deltas:
                q.put(event)

    def send_events(
        self, session: RemoteSession, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Accept a batch (all or nothing: :class:`Rejected` if any event is invalid)."""
        accepted = []
        with self._lock:
            for raw in events:
                self._check_event(session, raw)
            answers = [
                r["custom_tool_use_id"] for r in events if r["type"] == "user.custom_tool_result"
            ]
            if len(answers) != len(set(answers)):
                raise Rejected(
                    "more than one user.custom_tool_result for the same custom_tool_use_id"
                )
            for raw in events:
                event = {**raw, "id": self._id("sevt"), "processed_at": now_iso()}
                accepted.append(event)
                self.publish(session, event)
                kind = raw.get("type")
                if kind == "user.custom_tool_result":
                    session.waiting[raw["custom_tool_use_id"]] = event
                    self._changed.notify_all()
                elif kind in ("user.message", "user.interrupt"):
                    session.epoch += 1  # whatever the agent was waiting on is abandoned
                    session.waiting.clear()
                    self._changed.notify_all()
                if kind == "user.interrupt":
                    session.data["status"] = "idle"
                    self.publish(session, self._event("session.status_idle", **END_TURN))
                elif kind == "user.message":
                    threading.Thread(
                        target=self._respond, args=(session, event, session.epoch), daemon=True
                    ).start()
        return accepted

    def _check_event(self, session: RemoteSession, raw: Any) -> None:
        if not isinstance(raw, dict) or raw.get("type") not in USER_EVENTS:
            kind = raw.get("type") if isinstance(raw, dict) else raw
            raise Rejected(f"unsupported event type {kind!r}")
        if raw["type"] != "user.custom_tool_result":
            return
        use_id = raw.get("custom_tool_use_id")
        if not isinstance(use_id, str) or session.waiting.get(use_id, False) is not None:
            raise Rejected(
                f"custom_tool_use_id {use_id!r} does not match an agent.custom_tool_use event "
                "the session is waiting on"
            )
        content = raw.get("content", [])
        if not isinstance(content, list) or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in content
        ):
            raise Rejected("content must be a list of content blocks")
        if raw.get("is_error") not in (None, True, False):
            raise Rejected("is_error must be a boolean")

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": self._id("sevt"), "type": kind, "processed_at": now_iso(), **fields}

    def _call_tool(
        self, session: RemoteSession, epoch: int, name: str, tool_input: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Emit a custom tool use, go idle on it, and wait for its result (None: abandoned)."""
        time.sleep(self.step_delay)
        with self._lock:
            if session.epoch != epoch:
                return None
            use = self._event("agent.custom_tool_use", name=name, input=tool_input)
            session.waiting[use["id"]] = None
            session.data["status"] = "idle"
            self.publish(session, use)  # the idle goes out with it, before any result can
            stop = {"type": "requires_action", "event_ids": [use["id"]]}
            self.publish(
                session, self._event("session.status_idle", stop_reason=stop, stop_details=None)
            )
            while session.epoch == epoch and not self._stopping.is_set():
                result = session.waiting.get(use["id"])
                if result is not None:
                    del session.waiting[use["id"]]
                    session.data["status"] = "running"
                    return result
                self._changed.wait(timeout=0.25)
        return None

    def _respond(self, session: RemoteSession, user_event: dict[str, Any], epoch: int) -> None:
        """Play one scripted agent turn into the session's event log."""
        texts = [
            b.get("text", "") for b in user_event.get("content", []) if b.get("type") == "text"
        ]
        prompt = texts[-1] if texts else ""
        replayed = sum(
            1 for t in texts[:-1] for line in t.splitlines() if line.startswith(TRANSCRIPT_MARK)
        )
        with self._lock:
            session.user_turns += 1 + replayed
            turn = session.user_turns
            session.data["status"] = "running"

        def emit(kind: str, **fields: Any) -> dict[str, Any]:
            time.sleep(self.step_delay)
            event = {"id": self._id("sevt"), "type": kind, "processed_at": now_iso(), **fields}
            self.publish(session, event)
            return event

        emit("session.status_running")
        start = emit("span.model_request_start")
        outcomes = []
        for name, tool_input in custom_calls(prompt):
            result = self._call_tool(session, epoch, name, tool_input)
            if result is None:
                return
            emit("session.status_running")
            text = "".join(
                str(b.get("text", ""))
                for b in result.get("content") or []
                if b.get("type") == "text"
            )
            outcomes.append(
                f"Tool {name} {'failed' if result.get('is_error') else 'returned'}: {text}"
            )
        command = tool_request(prompt)
        if command is not None:
            use = emit("agent.tool_use", name="bash", input={"command": command})
            emit(
                "agent.tool_result",
                tool_use_id=use["id"],
                content=[{"type": "text", "text": f"$ {command}\nok"}],
                is_error=False,
            )
        reply = "\n".join([self.reply(prompt, turn), *outcomes])
        message_id = self._id("sevt")
        self.publish(
            session,
            {"type": "event_start", "event": {"type": "agent.message", "id": message_id}},
            delta=True,
        )
        for piece in pieces(reply):
            time.sleep(self.step_delay)
            self.publish(
                session,
                {
                    "type": "event_delta",
                    "event_id": message_id,
                    "delta": {
                        "type": "content_delta",
                        "index": 0,
                        "content": {"type": "text", "text": piece},
                    },
                },
                delta=True,
            )
        time.sleep(self.step_delay)
        self.publish(
            session,
            {
                "id": message_id,
                "type": "agent.message",
                "content": [{"type": "text", "text": reply}],
                "processed_at": now_iso(),
            },
        )
        usage = {
            "input_tokens": 12 + sum(len(t) for t in texts) // 4,
            "output_tokens": 1 + len(reply) // 4,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        emit(
            "span.model_request_end",
            model_request_start_id=start["id"],
            model_usage=usage,
            is_error=False,
        )
        with self._lock:
            session.data["usage"]["input_tokens"] += usage["input_tokens"]
            session.data["usage"]["output_tokens"] += usage["output_tokens"]
            session.data["status"] = "idle"
            session.data["updated_at"] = now_iso()
        emit("session.status_idle", **END_TURN)


END_TURN: dict[str, Any] = {"stop_reason": {"type": "end_turn"}, "stop_details": None}
