"""What runs remotely: model, system prompt, tools and environment, validated and hashed.

The fingerprint names the remote agent and environment, so a changed configuration
gets new ones and an unchanged one reuses them across processes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...errors import ConfigError
from ...lifecycle import json_safe

TOOLSET = "agent_toolset_20260401"
PACKAGE_MANAGERS = ("apt", "cargo", "gem", "go", "npm", "pip")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
CUSTOM_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema"})


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
