"""A scripted model for ADK's ``Runner`` (ADK's own tests use a mock model the same
way): each call answers with the next scripted reply (text or a function call) and
records the request, so a test can see which history the Runner sent from the session."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from pydantic import Field


def text(reply: str) -> types.Content:
    """The model saying ``reply``."""
    return types.Content(role="model", parts=[types.Part(text=reply)])


def call(name: str, **args: Any) -> types.Content:
    """The model calling the function tool ``name`` with ``args``."""
    return types.Content(role="model", parts=[types.Part.from_function_call(name=name, args=args)])


class ScriptedLlm(BaseLlm):
    """Answers call N with ``replies[N]``; ``requests[N]`` is what call N was given.
    With ``stream=True`` a text reply comes as a partial chunk first, then whole."""

    model: str = "scripted"
    replies: list[types.Content] = Field(default_factory=list)
    requests: list[LlmRequest] = Field(default_factory=list)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self.requests.append(llm_request.model_copy(deep=True))
        assert self.replies, f"the model was called once more than scripted: {llm_request.contents}"
        reply = self.replies.pop(0)
        if stream and reply.parts and reply.parts[0].text:
            half = reply.parts[0].text[: len(reply.parts[0].text) // 2]
            yield LlmResponse(content=text(half), partial=True)
        yield LlmResponse(content=reply, turn_complete=True)

    def history(self, call_index: int = -1) -> list[str]:
        """The texts of the contents sent with call ``call_index`` (function calls and
        responses as ``name(...)`` / ``name -> result``)."""
        said = []
        for content in self.requests[call_index].contents:
            for part in content.parts or []:
                if part.text:
                    said.append(part.text)
                elif part.function_call:
                    said.append(f"{part.function_call.name}({part.function_call.args})")
                elif part.function_response:
                    said.append(
                        f"{part.function_response.name} -> {part.function_response.response}"
                    )
        return said
