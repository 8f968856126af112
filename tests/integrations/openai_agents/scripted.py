"""A scripted model for the OpenAI Agents SDK's ``Runner``: each call answers with the
next scripted reply (a text, or a function call) and records the input it was given, so
a test can see which history the Runner sent from the session."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from agents import Usage
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.models.interface import Model
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

_ids = itertools.count(1)


def text(reply: str) -> ResponseOutputMessage:
    """An assistant message saying ``reply``."""
    return ResponseOutputMessage(
        id=f"msg_{next(_ids)}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=reply, annotations=[])],
    )


def call(name: str, **arguments: Any) -> ResponseFunctionToolCall:
    """A call of the function tool ``name`` with ``arguments``."""
    number = next(_ids)
    return ResponseFunctionToolCall(
        id=f"fc_{number}",
        call_id=f"call_{number}",
        type="function_call",
        name=name,
        arguments=json.dumps(arguments),
    )


class ScriptedModel(Model):
    """Answers call N with ``replies[N]``; ``inputs[N]`` is what call N was given."""

    def __init__(self, *replies: ResponseOutputMessage | ResponseFunctionToolCall) -> None:
        self.replies = list(replies)
        self.inputs: list[list[TResponseInputItem]] = []

    def _next(self, input: str | list[TResponseInputItem]) -> list[Any]:
        given = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        self.inputs.append(given)  # type: ignore[arg-type]
        assert self.replies, f"the model was called once more than scripted, with {given}"
        return [self.replies.pop(0)]

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kw: Any
    ) -> ModelResponse:
        return ModelResponse(output=self._next(input), usage=Usage(requests=1), response_id=None)

    async def stream_response(  # type: ignore[override]
        self, system_instructions: Any, input: Any, *args: Any, **kw: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        response = Response(
            id=f"resp_{next(_ids)}",
            created_at=0,
            model="scripted",
            object="response",
            output=self._next(input),
            tool_choice="none",
            tools=[],
            top_p=None,
            parallel_tool_calls=False,
            status="completed",
        )
        yield ResponseCreatedEvent(type="response.created", response=response, sequence_number=0)
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=1
        )

    def history(self, call_number: int = -1) -> list[str]:
        """The texts in the input of one call (user and assistant messages, tool outputs)."""
        texts = []
        for item in self.inputs[call_number]:
            content = item.get("content", item.get("output"))
            if isinstance(content, list):
                content = "".join(str(block.get("text", "")) for block in content)
            texts.append(str(content))
        return texts
