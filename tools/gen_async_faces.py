"""Generate ``praisondb/aio/faces.py``: the async face of every sync API class.

The store logic exists once, in the sync core. The async face is a thin layer whose
every method hands the core call to the bridge (see ``praisondb/aio/bridge.py``); this
script writes that layer from the sync classes' own source, so signatures, defaults and
docstrings cannot drift apart. ``tests/unit/test_async_faces_generated.py`` fails when
the committed file differs from what this script writes; rerun it after changing a sync
signature:

    .venv/bin/python tools/gen_async_faces.py          # rewrite the file
    .venv/bin/python tools/gen_async_faces.py --check  # exit 1 if stale
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import inspect
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "praisondb" / "aio" / "faces.py"


@dataclass(frozen=True)
class Spec:
    """One generated class: the async face of ``source`` (``module:Class``)."""

    name: str
    source: str
    skip: frozenset[str] = frozenset()
    """Methods left to the hand-written subclass (context managers, iteration)."""
    inline: frozenset[str] = frozenset()
    """Methods that do no I/O: called directly, not awaited."""
    io_properties: frozenset[str] = frozenset()
    """Properties that read the store: awaitable methods in the async face."""
    attributes: tuple[str, ...] = ()
    """Plain attributes passed through as read-only properties."""
    aliases: dict[str, str] = field(default_factory=dict)
    mixins: tuple[str, ...] = ()
    """Hand-written classes of praisondb/aio/context.py to mix in."""


SPECS = (
    Spec(
        "AsyncSessions", "praisondb.core.repositories:Sessions", inline=frozenset({"verify_token"})
    ),
    Spec("AsyncMessages", "praisondb.core.repositories:Messages", aliases={"iter": "iterate"}),
    Spec("AsyncState", "praisondb.core.repositories:State"),
    Spec("AsyncCheckpoints", "praisondb.core.repositories:Checkpoints"),
    Spec("AsyncRuns", "praisondb.core.repositories:Runs"),
    Spec("AsyncStateView", "praisondb.core.state_view:StateView", attributes=("scope",)),
    Spec(
        "AsyncLease",
        "praisondb.core.locks:Lease",
        attributes=("name", "owner", "token"),
        mixins=("LeaseContext",),
    ),
    Spec(
        "AsyncSession",
        "praisondb.core.session:Session",
        skip=frozenset({"db"}),
        inline=frozenset({"token", "lock"}),
        mixins=("SessionContext",),
        io_properties=frozenset({"metadata", "summary"}),
        attributes=("id", "user_id", "agent", "info"),
    ),
    Spec("AsyncLifecycle", "praisondb.integrations.praisonai:LifecycleMixin"),
    Spec(
        "AsyncDbSessionAdapterBase",
        "praisondb.adapter:DbSessionAdapter",
        attributes=("on_error", "agent"),
    ),
)

FACES = {
    "Session": "AsyncSession",
    "StateView": "AsyncStateView",
    "Lease": "AsyncLease",
}
"""Sync classes whose instances the async face hands out wrapped."""


def _module_ast(module_name: str) -> ast.Module:
    module = importlib.import_module(module_name)
    return ast.parse(inspect.getsource(module))


def _class_node(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise SystemExit(f"class {name} not found")


def _origins(module_name: str, tree: ast.Module) -> dict[str, str]:
    """Where each name the module uses comes from (its imports, or itself)."""
    package = module_name.rsplit(".", 1)[0]
    found: dict[str, str] = {}
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    for node in [*imports, *tree.body]:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                found[alias.asname or alias.name] = base
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.Assign, ast.AnnAssign)):
            targets: list[str] = []
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                targets = [node.name]
            elif isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node.target, ast.Name):
                targets = [node.target.id]
            for name in targets:
                found.setdefault(name, module_name)
    return found


class _Rename(ast.NodeTransformer):
    """Sync classes to their async faces; ``Iterator`` to ``AsyncIterator``."""

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id in FACES:
            return ast.Name(FACES[node.id], node.ctx)
        if node.id == "Iterator":
            return ast.Name("AsyncIterator", node.ctx)
        return node


def _names(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _doc(fn: ast.FunctionDef) -> str | None:
    text = ast.get_docstring(fn)
    return None if text is None else text.split("\n\n")[0].strip()


def _call_args(args: ast.arguments) -> str:
    parts = [a.arg for a in [*args.posonlyargs, *args.args][1:]]
    if args.vararg:
        parts.append(f"*{args.vararg.arg}")
    parts += [f"{a.arg}={a.arg}" for a in args.kwonlyargs]
    if args.kwarg:
        parts.append(f"**{args.kwarg.arg}")
    return ", ".join(parts)


def _unwrapped_args(args: ast.arguments) -> str:
    """Call arguments, with async faces (an AsyncSession argument) unwrapped to sync."""
    out = []
    for text, annotation in [
        *((a.arg, a.annotation) for a in [*args.posonlyargs, *args.args][1:]),
    ]:
        out.append(f"_sync({text})" if _names(annotation) & set(FACES) else text)
    if args.vararg:
        out.append(f"*{args.vararg.arg}")
    for a in args.kwonlyargs:
        out.append(
            f"{a.arg}=_sync({a.arg})" if _names(a.annotation) & set(FACES) else f"{a.arg}={a.arg}"
        )
    if args.kwarg:
        out.append(f"**{args.kwarg.arg}")
    return ", ".join(out)


class Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.typing_imports: dict[str, set[str]] = {}
        self.runtime_imports: dict[str, set[str]] = {}

    def need(self, names: set[str], origins: dict[str, str], *, runtime: bool) -> None:
        table = self.runtime_imports if runtime else self.typing_imports
        for name in names:
            if name in FACES.values() or name in {"Any", "AsyncIterator", "None", "self"}:
                continue
            origin = origins.get(name)
            if origin is None or origin == "builtins":
                continue
            table.setdefault(origin, set()).add(name)

    def method(self, spec: Spec, fn: ast.FunctionDef, origins: dict[str, str]) -> None:
        name = fn.name
        args = fn.args
        self_and_rest = ast.unparse(_Rename().visit(copy.deepcopy(args)))
        signature = self_and_rest
        returns = fn.returns
        returns_text = (
            ast.unparse(_Rename().visit(copy.deepcopy(returns))) if returns is not None else "None"
        )
        self.need(
            _names(args) - {a.arg for a in ast.walk(args) if isinstance(a, ast.arg)},
            origins,
            runtime=False,
        )
        for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
            self.need(_names(default), origins, runtime=True)
        self.need(_names(returns), origins, runtime=False)
        doc = _doc(fn)
        call = _unwrapped_args(fn.args)
        call = f"self._sync.{name}" + (f", {call}" if call else "")
        returned = _names(returns)
        face = next((FACES[n] for n in returned if n in FACES), None)
        iterator = returns is not None and ast.unparse(returns).startswith("Iterator[")
        if name in spec.inline:
            header = f"    def {name}({signature}) -> {returns_text}:"
            body = f"self._sync.{name}({_unwrapped_args(fn.args)})"
            body = f"return {face}({body}, self._runner)" if face else f"return {body}"
        elif iterator:
            header = f"    def {name}({signature}) -> {returns_text}:"
            body = f"return iterate(self._runner, {call})"
        else:
            header = f"    async def {name}({signature}) -> {returns_text}:"
            if face is None:
                body = f"return await self._runner.run({call})"
            elif "None" in ast.unparse(returns).split(" | "):
                body = (
                    f"found = await self._runner.run({call})\n"
                    f"return None if found is None else {face}(found, self._runner)"
                )
            elif ast.unparse(returns).startswith("list["):
                body = (
                    f"found = await self._runner.run({call})\n"
                    f"return [{face}(item, self._runner) for item in found]"
                )
            else:
                body = f"return {face}(await self._runner.run({call}), self._runner)"
        self.lines.append(header)
        if doc:
            self.lines.append(textwrap.indent(f'"""{doc}"""', " " * 8))
        self.lines.append(textwrap.indent(body, " " * 8))
        self.lines.append("")

    def io_property(self, fn: ast.FunctionDef, origins: dict[str, str]) -> None:
        returns = fn.returns
        self.need(_names(returns), origins, runtime=False)
        text = (
            ast.unparse(_Rename().visit(copy.deepcopy(returns))) if returns is not None else "Any"
        )
        self.lines.append(f"    async def {fn.name}(self) -> {text}:")
        doc = _doc(fn)
        self.lines.append(
            f'        """{doc or "Read from the store (a property of the sync face)."}"""'
        )
        self.lines.append(
            f"        return await self._runner.run(getattr, self._sync, {fn.name!r})"
        )
        self.lines.append("")

    def face_property(self, fn: ast.FunctionDef, origins: dict[str, str]) -> None:
        returns = fn.returns
        self.need(_names(returns), origins, runtime=False)
        face = FACES[next(n for n in _names(returns) if n in FACES)]
        self.lines.append("    @property")
        self.lines.append(f"    def {fn.name}(self) -> {face}:")
        doc = _doc(fn)
        if doc:
            self.lines.append(textwrap.indent(f'"""{doc}"""', " " * 8))
        self.lines.append(f"        return {face}(self._sync.{fn.name}, self._runner)")
        self.lines.append("")

    def plain_property(self, fn: ast.FunctionDef, origins: dict[str, str]) -> None:
        returns = fn.returns
        self.need(_names(returns), origins, runtime=False)
        text = ast.unparse(returns) if returns is not None else "Any"
        self.lines.append("    @property")
        self.lines.append(f"    def {fn.name}(self) -> {text}:")
        doc = _doc(fn)
        if doc:
            self.lines.append(textwrap.indent(f'"""{doc}"""', " " * 8))
        self.lines.append(f"        return self._sync.{fn.name}")
        self.lines.append("")

    def face(self, spec: Spec) -> None:
        module_name, class_name = spec.source.split(":")
        tree = _module_ast(module_name)
        origins = _origins(module_name, tree)
        cls = _class_node(tree, class_name)
        self.runtime_imports.setdefault(module_name, set()).add(class_name)
        self.lines.append("")
        bases = ", ".join([f"Face[{class_name}]", *spec.mixins])
        self.lines.append(f"class {spec.name}({bases}):")
        self.lines.append(f'    """The async face of :class:`{module_name}.{class_name}`."""')
        self.lines.append("")
        self.lines.append("    __slots__ = ()")
        self.lines.append("")
        cls_obj = getattr(importlib.import_module(module_name), class_name)
        for attribute in spec.attributes:
            hint = inspect.get_annotations(cls_obj.__init__).get(attribute)
            annotation = _attribute_annotation(cls, attribute) or hint or "Any"
            self.need(_names(ast.parse(annotation, mode="eval")), origins, runtime=False)
            self.lines.append("    @property")
            self.lines.append(f"    def {attribute}(self) -> {annotation}:")
            self.lines.append(f"        return self._sync.{attribute}")
            self.lines.append("")
        for node in cls.body:
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            if node.name in spec.skip:
                continue
            decorators = {ast.unparse(d) for d in node.decorator_list}
            if "property" in decorators:
                if node.name in spec.io_properties:
                    self.io_property(node, origins)
                elif _names(node.returns) & set(FACES):
                    self.face_property(node, origins)
                else:
                    self.plain_property(node, origins)
                continue
            self.method(spec, node, origins)
        for alias, target in spec.aliases.items():
            self.lines.append(f"    {alias} = {target}")
            self.lines.append("")

    def render(self) -> str:
        head = [
            '"""The async faces of the sync API classes. GENERATED by tools/gen_async_faces.py',
            "from the sync classes' source: do not edit; rerun the script instead.",
            "",
            "Each method hands the one sync implementation to the bridge (praisondb/aio/bridge.py).",
            '"""',
            "",
            "# ruff: noqa: E501",
            "from __future__ import annotations",
            "",
            "from collections.abc import AsyncIterator",
            "from typing import TYPE_CHECKING, Any",
            "",
        ]
        runtime = self.runtime_imports
        for module in sorted(runtime):
            head.append(f"from {module} import {', '.join(sorted(runtime[module]))}")
        head.append("from .context import LeaseContext, SessionContext")
        head.append("from .face import Face, _sync, iterate")
        head.append("")
        head.append("if TYPE_CHECKING:")
        typing = {m: names - runtime.get(m, set()) for m, names in self.typing_imports.items()}
        for module in sorted(typing):
            if typing[module]:
                head.append(f"    from {module} import {', '.join(sorted(typing[module]))}")
        head.append("")
        unused_any = "Any" not in "\n".join(self.lines)
        text = "\n".join(head + self.lines).rstrip() + "\n"
        if unused_any:
            text = text.replace(
                "from typing import TYPE_CHECKING, Any", "from typing import TYPE_CHECKING"
            )
        return text


def _attribute_annotation(cls: ast.ClassDef, attribute: str) -> str | None:
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Attribute)
            and node.target.attr == attribute
        ):
            return ast.unparse(node.annotation)
    return None


def generate() -> str:
    writer = Writer()
    for spec in SPECS:
        writer.face(spec)
    raw = writer.render()
    ruff = Path(sys.executable).with_name("ruff")
    fixed = (
        subprocess.run(
            [str(ruff), "check", "--fix", "--quiet", "--stdin-filename", str(TARGET), "-"],
            input=raw,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        ).stdout
        or raw
    )
    return subprocess.run(
        [str(ruff), "format", "--quiet", "--stdin-filename", str(TARGET), "-"],
        input=fixed,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    options = parser.parse_args()
    text = generate()
    if options.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run tools/gen_async_faces.py")
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
