"""The public surface is small, documented, and importing it pulls in no driver."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

import praisondb


def test_all_matches_public_names() -> None:
    public = {name for name in dir(praisondb) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(praisondb, name)).__name__ == "module"}
    public.discard("annotations")  # from __future__ import annotations
    assert set(praisondb.__all__) - {"__version__"} == public - modules


def written_docstring(cls: type) -> str:
    """``cls``'s docstring, or "" when there is none or only the one ``@dataclass``
    generates from the fields ("Message(session_id: str, ...)")."""
    doc = (cls.__doc__ or "").strip()
    if dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "(") and doc.endswith(")"):
        return ""
    return doc


def test_a_generated_dataclass_docstring_does_not_count() -> None:
    @dataclasses.dataclass
    class Bare:
        x: int

    @dataclasses.dataclass
    class Documented:
        """Says why."""

        x: int

    assert Bare.__doc__ and written_docstring(Bare) == ""
    assert written_docstring(Documented) == "Says why."


def test_every_export_has_a_docstring_or_is_data() -> None:
    missing = [
        name
        for name in praisondb.__all__
        if isinstance(obj := getattr(praisondb, name), type)
        and obj.__module__.startswith("praisondb")
        and not written_docstring(obj)
    ]
    assert missing == [], f"no docstring of their own: {missing}"


DRIVERS = [
    "psycopg",
    "pymysql",
    "pymongo",
    "redis",
    "clickhouse_connect",
    "chdb",
    "anthropic",
    "httpx",  # RemoteSession
    "httpcore",  # the praisondb+http:// client
    "starlette",  # the server
    "uvicorn",
]
FRAMEWORKS = [
    "agents",
    "google.adk",
    "google.genai",
    "langchain_core",
    "langgraph",
    "openai",
    "praisonaiagents",
]
"""Agent frameworks (and their clients) that only praisondb.integrations.* may import."""


@pytest.mark.parametrize(
    "module", ["praisondb", "praisondb.integrations", "praisondb.integrations.labels"]
)
def test_import_loads_no_driver_and_no_framework(module: str) -> None:
    """In a fresh interpreter: importing praisondb (or the integrations package, or the
    framework-free labels the CLI uses) pulls in no driver and no agent framework."""
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps(sorted(set({DRIVERS + FRAMEWORKS!r}) & set(sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_facades_load_no_agent_framework() -> None:
    code = (
        "import json, sys, praisondb; praisondb.PraisonDB('memory://'); praisondb.AsyncPraisonDB; "
        "praisondb.PraisonDB('memory://').session('s').add_user('hi'); "
        f"print(json.dumps(sorted(set({FRAMEWORKS!r}) & set(sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("integration", "loaded"),
    [
        ("openai_agents", ["agents", "openai"]),
        ("adk", ["google.adk", "google.genai"]),
        ("langgraph", ["langgraph"]),
    ],
)
def test_the_framework_check_can_fail(integration: str, loaded: list[str]) -> None:
    code = (
        f"import json, sys, praisondb.integrations.{integration}; "
        f"print(json.dumps(sorted(set({FRAMEWORKS!r}) & set(sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(json.loads(out.stdout)) >= set(loaded)


def test_every_error_class_is_exported() -> None:
    errors = set(praisondb.errors.__all__) - {"BatchTypeError"}  # internal to the sink
    assert {"PraisonDBError", "ConfigError", "BackendUnavailable", "StorageFull"} <= errors
    assert errors <= set(praisondb.__all__)
    for name in errors:
        assert issubclass(getattr(praisondb, name), praisondb.PraisonDBError)
