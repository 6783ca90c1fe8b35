"""The layout the architecture promises: no import cycles in server/, wiring only in create_app."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return "cimhub." + ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Each server module and the cimhub.server modules it imports (a submodule, not its package)."""
    files = {module_name(p): p for p in (ROOT / "server").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = [f"{node.module}.{alias.name}" for alias in node.names]
                found = [m for m in submodules if m in files]
                targets = found if found else [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            deps.update(t for t in targets if t in files and t != name)
        graph[name] = deps
    return graph


def test_no_module_in_server_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    cycles = []
    for start in graph:
        stack, seen = list(graph[start]), set()
        while stack:
            module = stack.pop()
            if module == start:
                cycles.append(start)
                break
            if module not in seen:
                seen.add(module)
                stack.extend(graph[module])
    assert cycles == []


def test_no_relative_imports_in_server() -> None:
    """Absolute imports say where a collaborator lives; a moved module cannot silently import a sibling."""
    relative = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "server").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def test_only_create_app_wires_the_hub() -> None:
    """Collaborators go in through constructors: nothing outside app.py builds the hub's parts."""
    wiring = {"Hub(", "Broker(", "MutationEngine(", "Dispatcher(", "Connections("}
    offenders = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in (ROOT / "server").rglob("*.py")
        if path.name != "app.py"
        for needle in wiring
        if needle in path.read_text() and f"class {needle[:-1]}" not in path.read_text()
    ]
    assert offenders == []
