"""A local OpenAI-compatible Chat Completions server, so real agent frameworks run offline.

``POST /v1/chat/completions`` answers from a script the test sets (:meth:`script`): each
request pops the next :class:`Reply`, a text or tool calls, sent as one JSON response or,
when the request asks ``stream: true``, as Server-Sent Events chunks the way OpenAI
streams them (tool-call arguments split across chunks). Every request body is recorded,
so a test can check exactly which messages the model was given. A request with nothing
scripted gets a 400 naming what it asked (no retries, a clear failure); so does any
other path.

Agents in other processes reach it through ``OPENAI_BASE_URL``/``OPENAI_API_BASE``
(:meth:`env`) with the dummy key :data:`FAKE_KEY`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAKE_KEY = "sk-fake-praisondb-tests"


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str


@dataclass(frozen=True)
class Reply:
    """One model turn: ``text``, or ``tool_calls`` (then the text is usually empty)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


def text(content: str) -> Reply:
    return Reply(text=content)


def call(name: str, call_id: str, **arguments: Any) -> Reply:
    """A turn that asks for one tool call."""
    return Reply(tool_calls=(ToolCall(name, arguments, call_id),))


@dataclass
class FakeOpenAIServer:
    """``with FakeOpenAIServer() as server: server.script(text("hi")); ...``."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (ends in ``/v1``)."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def env(self) -> dict[str, str]:
        """The environment that points the ``openai`` SDK (and PraisonAI) here."""
        return {
            "OPENAI_BASE_URL": self.url,
            "OPENAI_API_BASE": self.url,
            "OPENAI_API_KEY": FAKE_KEY,
        }

    def script(self, *replies: Reply) -> None:
        """Replace what the next requests get, in order."""
        with self._lock:
            self._replies = deque(replies)
            self.errors.clear()

    def unused(self) -> list[Reply]:
        with self._lock:
            return list(self._replies)

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ------------------------------------------------------------------
    def _next(self, body: dict[str, Any]) -> Reply | None:
        with self._lock:
            self.requests.append(body)
            if self._replies:
                return self._replies.popleft()
            last = (body.get("messages") or [{}])[-1]
            self.errors.append(f"no scripted reply for a request ending {last!r}")
            return None

    def _completion(self, reply: Reply, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": json.dumps(tc.arguments)},
                }
                for tc in reply.tool_calls
            ]
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            "usage": _USAGE,
        }

    def _chunks(self, reply: Reply, model: str, include_usage: bool) -> list[dict[str, Any]]:
        base = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        words = reply.text.split(" ")
        deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words) if reply.text]
        for index, tc in enumerate(reply.tool_calls):
            arguments = json.dumps(tc.arguments)
            half = len(arguments) // 2
            head = {"index": index, "id": tc.id, "type": "function"}
            deltas.append(
                {
                    "tool_calls": [
                        {**head, "function": {"name": tc.name, "arguments": arguments[:half]}}
                    ]
                }
            )
            deltas.append(
                {"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}
            )
        chunks = [
            {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
        ]
        finish = "tool_calls" if reply.tool_calls else "stop"
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage:
            chunks.append({**base, "choices": [], "usage": _USAGE})
        return chunks


_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(
                404, {"error": {"message": f"the fake serves chat/completions, not {self.path}"}}
            )
            return
        body = json.loads(raw or b"{}")
        reply = self.fake._next(body)
        if reply is None:
            self._send(
                400, {"error": {"message": "no scripted reply", "type": "invalid_request_error"}}
            )
            return
        model = str(body.get("model", "fake"))
        if not body.get("stream"):
            self._send(200, self.fake._completion(reply, model))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        for chunk in self.fake._chunks(reply, model, usage):
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def do_GET(self) -> None:
        self._send(
            404, {"error": {"message": f"the fake serves POST chat/completions, not {self.path}"}}
        )

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
