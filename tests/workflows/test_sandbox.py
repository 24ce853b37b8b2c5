"""What the workflow sandbox passes through is declared once: the one imports_passed_through() block of the run
workflow's module, which imports everything of hitl (and pydantic) it uses there; no other workflow module has
one (they are passed through themselves), and the workflow module stays under the sandbox's guard."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _blocks(tree: ast.Module) -> list[ast.With]:
    return [node for node in tree.body if isinstance(node, ast.With)
            and "imports_passed_through" in ast.unparse(node.items[0].context_expr)]


def _imported(nodes: list[ast.stmt]) -> set[str]:
    found = set()
    for statement in nodes:
        for node in ast.walk(statement):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
    return found


def test_the_run_workflow_imports_hitl_and_pydantic_only_inside_its_one_block():
    tree = ast.parse((ROOT / "workflows" / "agent_run.py").read_text())
    [block] = _blocks(tree)
    ours = {m for m in _imported(tree.body) if m.split(".")[0] in ("hitl", "pydantic")}
    inside = _imported(block.body)
    assert ours and ours <= inside, sorted(ours - inside)


def test_no_other_workflow_module_has_a_block():
    others = [p.name for p in sorted((ROOT / "workflows").glob("*.py"))
              if p.name != "agent_run.py" and _blocks(ast.parse(p.read_text()))]
    assert not others
