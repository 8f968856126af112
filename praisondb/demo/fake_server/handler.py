"""The HTTP face of the fake API: routing, JSON bodies, the Server-Sent-Events stream."""

from __future__ import annotations

import queue
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from .model import (
    STATUS_ERRORS,
    RecordedRequest,
    Rejected,
    RemoteSession,
    error_body,
)


class Handler(BaseHTTPRequestHandler):
    fake: Any
    """The FakeManagedAgentsServer this handler serves (set per server by ``start``)."""
    protocol_version = "HTTP/1.1"
    _lose_reply = False

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests
        return None

    # -- plumbing -------------------------------------------------------------------
    def _record(self) -> tuple[str, dict[str, list[str]], Any]:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        query = parse_qs(parts.query)
        with self.fake._lock:
            self.fake.requests.append(
                RecordedRequest(
                    self.command,
                    parts.path,
                    query,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
        return parts.path, query, body

    def _json(self, status: int, payload: Any) -> None:
        if self._lose_reply:
            self._drop()
            return
        data = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_fake")
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.close()

    def _dispatch(self) -> None:
        path, query, body = self._record()
        fault = self.fake._fault_for(self.command, path)
        self._lose_reply = fault == -1
        if fault is not None and fault != -1:
            if fault == 0:
                self._drop()
                return
            self._json(
                fault, error_body(STATUS_ERRORS.get(fault, "api_error"), f"injected {fault}")
            )
            return
        bearer = self.headers.get("authorization", "").removeprefix("Bearer ")
        if self.fake.api_key not in (self.headers.get("x-api-key"), bearer):
            self._json(401, error_body("authentication_error", "invalid API key"))
            return
        self._route(path, query, body if isinstance(body, dict) else {})

    do_GET = do_POST = do_DELETE = _dispatch

    # -- routes ---------------------------------------------------------------------
    def _route(self, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> None:
        fake, method = self.fake, self.command
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"] or len(parts) < 2:
            self._json(404, error_body("not_found_error", f"no route {path}"))
            return
        kind, rest = parts[1], parts[2:]
        if kind == "agents" and method == "POST" and not rest:
            try:
                self._json(200, fake.create_agent(body))
            except Rejected as exc:
                self._json(400, error_body("invalid_request_error", str(exc)))
        elif kind == "agents" and method == "GET" and len(rest) == 1:
            self._found(fake.agents.get(rest[0]), "agent")
        elif kind == "environments" and method == "POST" and not rest:
            self._json(200, fake.create_environment(body))
        elif kind == "environments" and method == "GET" and len(rest) == 1:
            self._found(fake.environments.get(rest[0]), "environment")
        elif kind == "sessions" and method == "POST" and not rest:
            self._json(*fake.create_session(body))
        elif kind == "sessions" and rest:
            self._session_route(method, rest, query, body)
        else:
            self._json(404, error_body("not_found_error", f"no route {method} {path}"))

    def _found(self, item: dict[str, Any] | None, what: str) -> None:
        if item is None:
            self._json(404, error_body("not_found_error", f"{what} not found"))
        else:
            self._json(200, item)

    def _session_route(
        self, method: str, rest: list[str], query: dict[str, list[str]], body: dict[str, Any]
    ) -> None:
        fake = self.fake
        session = fake.session(rest[0])
        if session is None:
            self._json(404, error_body("not_found_error", f"session {rest[0]} not found"))
            return
        tail = rest[1:]
        if not tail and method == "GET":
            self._json(200, session.data)
        elif not tail and method == "DELETE":
            fake.forget_session(rest[0])
            self._json(200, {"id": rest[0], "type": "session_deleted"})
        elif tail == ["events"] and method == "POST":
            events = body.get("events")
            if not isinstance(events, list) or not events:
                self._json(
                    400, error_body("invalid_request_error", "events must be a non-empty list")
                )
                return
            try:
                self._json(200, {"data": fake.send_events(session, events)})
            except Rejected as exc:
                self._json(400, error_body("invalid_request_error", str(exc)))
        elif tail == ["events"] and method == "GET":
            with fake._lock:
                events = list(session.events)
            if query.get("order") == ["desc"]:
                events.reverse()
            self._json(200, {"data": events, "next_page": None})
        elif tail == ["events", "stream"] and method == "GET":
            deltas = query.get("event_deltas[]", []) + query.get("event_deltas", [])
            self._stream(session, "agent.message" in deltas)
        else:
            self._json(
                404, error_body("not_found_error", f"no route {method} sessions/{'/'.join(rest)}")
            )

    def _stream(self, session: RemoteSession, wants_deltas: bool) -> None:
        fake = self.fake
        q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with fake._lock:
            session.subscribers.append((q, wants_deltas))
            limit = fake._stream_breaks.pop(0) if fake._stream_breaks else None
        sent = 0
        try:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            while not fake._stopping.is_set():
                try:
                    event = q.get(timeout=0.25)
                except queue.Empty:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    continue
                if event is None:
                    return
                if limit is not None and sent >= limit:
                    self._drop()
                    return
                frame = (
                    b"event: "
                    + event["type"].encode()
                    + b"\ndata: "
                    + orjson.dumps(event)
                    + b"\n\n"
                )
                self.wfile.write(frame)
                self.wfile.flush()
                sent += 1
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
        finally:
            with fake._lock:
                session.subscribers[:] = [s for s in session.subscribers if s[0] is not q]
