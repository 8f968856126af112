"""The tree reads as its architecture: no import cycles, every public error in errors.py."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import praisondb
from praisondb import errors

PACKAGE = Path(praisondb.__file__).parent

INTERNAL_EXCEPTIONS = {
    "praisondb.demo.fake_server.model.Rejected": "the fake API's refusal, sent as an HTTP error",
    "praisondb.stores.sql.errors.Unreachable": "raised and caught inside the SQL store",
    "praisondb.validation._Bad": "collects the path to a bad value; re-raised as ValidationError",
    # ADK's session services must raise ADK's own error types; each is also a praisondb error
    "praisondb.integrations.adk.SessionExists": "ADK's AlreadyExistsError and a Conflict",
    "praisondb.integrations.adk.SessionMissing": "ADK's SessionNotFoundError and a NotFound",
    "praisondb.integrations.adk.SessionStale": "ADK's StaleSessionError and a Conflict",
}
"""Exceptions that never leave the module that raises them, each with the reason."""


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path, ast.parse(path.read_text())


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (level - 1)] if level else []
    return ".".join([*parts, name] if name else parts) if level else (name or "")


def import_graph() -> dict[str, set[str]]:
    """Module -> modules it imports anywhere: top level, in functions, under TYPE_CHECKING."""
    modules = {name: (path, tree) for name, path, tree in _modules()}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, tree) in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_counting_function_and_type_only_imports() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the walk found too few modules to be meaningful"
    assert "praisondb.core.repositories" in graph["praisondb.core.session"]
    assert cycles(graph) == []


def test_every_error_that_can_leave_praisondb_is_in_errors_py() -> None:
    outside: dict[str, int] = {}
    for name, _path, tree in _modules():
        if name == "praisondb.errors":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name)
                and (base.id.endswith(("Error", "Exception")) or base.id in errors.__all__)
                for base in node.bases
            ):
                outside[f"{name}.{node.name}"] = node.lineno
    assert set(outside) == set(INTERNAL_EXCEPTIONS), {
        key: outside.get(key) for key in set(outside) ^ set(INTERNAL_EXCEPTIONS)
    }


def test_the_error_tree_drawing_names_every_error() -> None:
    drawn = set(re.findall(r"── (\w+)", errors.__doc__ or "")) | {"PraisonDBError"}
    assert drawn == set(errors.__all__)


def test_every_registered_store_is_in_the_static_protocol_proof() -> None:
    """mypy checks praisondb/stores/protocol_check.py; this keeps it complete."""
    from praisondb.urls import BACKENDS

    proof = (PACKAGE / "stores" / "protocol_check.py").read_text()
    tree = ast.parse(proof)
    proven: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            assert isinstance(node.value, ast.Tuple)
            proven[node.target.id] = {e.id for e in node.value.elts if isinstance(e, ast.Name)}
    for backend in BACKENDS.values():
        name = backend.target.rpartition(":")[2]
        if "analytics" in backend.roles:
            assert name in proven["ANALYTICS_SINKS"], name
        if "conversations" in backend.roles:
            assert name in proven["CONVERSATION_STORES"], name
        if "state" in backend.roles:
            assert name in proven["STATE_STORES"], name


def test_no_module_is_over_600_lines() -> None:
    """Hand-written modules; a generated one (the async faces) is as long as its sources."""
    texts = {name: path.read_text() for name, path, _ in _modules()}
    sizes = {
        name: len(text.splitlines())
        for name, text in texts.items()
        if "GENERATED by" not in text[:200]
    }
    assert max(sizes.values()) > 300, "the walk found too little code to be meaningful"
    assert {name: n for name, n in sizes.items() if n > 600} == {}
