"""The import graph of ``hitl/`` (function-level imports included, ``TYPE_CHECKING`` ones not), read with
grimp: no import cycle, and only the worker imports workflow or activity code (they live outside hitl/ in
the checkout, so the layers contract in pyproject.toml cannot see them)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]

def _cycles(graph: grimp.ImportGraph) -> list[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(frozenset(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycle_anywhere_in_hitl():
    """No module of hitl/ reaches itself again through its imports (the layers contract in pyproject.toml,
    run by .ci/checks, says which way each may point; this says no loop hides inside a room)."""
    graph = grimp.build_graph("hitl", include_external_packages=False, exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (function-level included, ``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_only_the_worker_imports_workflow_and_activity_code():
    """Client, store, service and CLI code take the contracts from hitl._wire; hitl.worker registers the rest."""
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                 for path in sorted((ROOT / "hitl").rglob("*.py")) if path != ROOT / "hitl" / "worker" / "__init__.py"
                 for line, module in _imports(path)
                 if module.split(".")[:2] in (["hitl", "workflows"], ["hitl", "activities"])]
    assert not offenders, offenders


def _builds_sql(path: Path) -> list[tuple[int, str]]:
    """Where ``path`` builds statements with ``psycopg.sql``: ``from psycopg import sql`` (or ``psycopg.sql``
    imported any way) and ``sql.SQL(...)``, ``sql.Identifier(...)``... calls or a ``psycopg.sql`` attribute."""
    found = [(line, f"imports {module}") for line, module in _imports(path) if module.startswith("psycopg.sql")]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "psycopg" and any(a.name == "sql" for a in node.names):
            found.append((node.lineno, "imports psycopg.sql"))
        elif isinstance(node, ast.Attribute) and ast.unparse(node).startswith(("sql.", "psycopg.sql")):
            found.append((node.lineno, f"uses {ast.unparse(node)}"))
    return found


def test_only_the_store_builds_sql():
    """Every SQL statement is hitl.store's (typed functions over ``Database``); the rooms above call them.
    Outside hitl/store, importing ``psycopg`` for its exception types (``except psycopg.OperationalError``,
    as PostgresDb's waits and the CLI's exit codes do) or a connection type is allowed; ``psycopg.sql``,
    ``sql.SQL`` and the like are not."""
    offenders = [f"{path.relative_to(ROOT)}:{line} {what}"
                 for path in sorted((ROOT / "hitl").rglob("*.py")) if ROOT / "hitl" / "store" not in path.parents
                 for line, what in _builds_sql(path)]
    assert not offenders, offenders
