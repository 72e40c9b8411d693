"""The layout's rules (docs/architecture.md): no import cycles, and who may import what.

Imports are read from the source, lazy ones (inside functions) included: a cycle through
a lazy import is still a cycle. Only `if TYPE_CHECKING:` blocks are left out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agentstore", "agentstore_cli")
MODEL = {
    "agentstore.events",
    "agentstore.event_types",
    "agentstore.event_model",
    "agentstore.event_factory",
    "agentstore.eventjson",
    "agentstore.event_ids",
    "agentstore.session",
    "agentstore.state",
    "agentstore.errors",
    "agentstore.payloads",
    "agentstore.codec",
    "agentstore.metadata",
    "agentstore.checked_model",
}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _is_module(name: str) -> bool:
    parts = name.split(".")
    return (ROOT.joinpath(*parts).with_suffix(".py")).exists() or (
        ROOT.joinpath(*parts, "__init__.py")
    ).exists()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_module(sub) else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            graph[_module_name(path)] = _imports(path)
    return graph


GRAPH = _graph()


def _ours(name: str) -> str | None:
    while name and name not in GRAPH:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name or None


def test_no_import_cycles() -> None:
    edges = {m: {o for d in deps if (o := _ours(d)) and o != m} for m, deps in GRAPH.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _library_modules() -> list[str]:
    return sorted(m for m in GRAPH if m.startswith("agentstore.") or m == "agentstore")


@pytest.mark.parametrize("module", _library_modules())
def test_the_library_never_imports_the_cli(module: str) -> None:
    bad = {d for d in GRAPH[module] if d.split(".")[0] in ("typer", "rich", "agentstore_cli")}
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("agentstore.store")))
def test_the_store_never_imports_a_concrete_backend(module: str) -> None:
    # The contract's modules: base and types, and idset (the page type `CheckedPage` an
    # import hands to `create_session_from_pages`, and the digests its check keeps; no I/O).
    allowed = {"agentstore.backends.base", "agentstore.backends.types", "agentstore.backends.idset"}
    bad = {d for d in GRAPH[module] if d.startswith("agentstore.backends.") and d not in allowed}
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("module", sorted(MODEL & set(GRAPH)))
def test_the_model_imports_only_the_model(module: str) -> None:
    bad = {d for d in GRAPH[module] if d.startswith("agentstore") and _ours(d) not in MODEL}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_import_agentstore_loads_no_backend_driver_or_framework() -> None:
    code = (
        "import sys, agentstore\n"
        "heavy = ('asyncpg', 'psycopg', 'grpc', 'fcntl', 'starlette', 'fastapi', 'uvicorn',\n"
        "         'agents', 'langchain_core', 'langgraph', 'pydantic_ai', 'google.adk',\n"
        "         'opentelemetry', 'typer', 'rich', 'agentstore.backends.file',\n"
        "         'agentstore.backends.memory', 'agentstore.backends.postgres',\n"
        "         'agentstore.backends.remote', 'agentstore.server', 'agentstore.integrations')\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.startswith(\n"
        "    tuple(h + '.' for h in heavy))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("module", _library_modules())
def test_modules_stay_small(module: str) -> None:
    parts = module.split(".")
    path = ROOT.joinpath(*parts).with_suffix(".py")
    if not path.exists():
        path = ROOT.joinpath(*parts, "__init__.py")
    if "_pb2" in path.name:
        return  # generated protobuf code
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 450, f"{path.relative_to(ROOT)} has {lines} lines: split it by job"
