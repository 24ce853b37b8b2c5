"""hitl's public names: ``__all__``, the lazy table and the ``TYPE_CHECKING`` imports say the same."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import hitl

SOURCE = Path(hitl.__file__).read_text()


def _type_checking_imports() -> dict[str, str]:
    """name -> module, from the ``if TYPE_CHECKING:`` block of hitl/__init__.py."""
    tree = ast.parse(SOURCE)
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING")
    return {a.asname or a.name: node.module for node in block.body if isinstance(node, ast.ImportFrom)
            for a in node.names if node.module}


def test_all_the_lazy_table_and_the_type_checking_imports_name_the_same_things():
    """One list of public names, three places: none may drift from the others."""
    assert sorted(hitl.__all__) == hitl.__all__, "keep __all__ sorted"
    assert set(hitl.__all__) == set(hitl._WHERE) == set(_type_checking_imports())
    assert _type_checking_imports() == hitl._WHERE


def test_every_public_name_loads_from_where_the_table_says():
    """Each name resolves on first use, to the object its module defines (``approval``: see below)."""
    for name, module in hitl._WHERE.items():
        if name != "approval":
            assert getattr(hitl, name) is getattr(importlib.import_module(module), name), name


def test_approval_decorates_whether_or_not_its_module_was_imported_first():
    """``import hitl.approval`` binds hitl.approval to the module: the module decorates as the function does."""
    import hitl.approval
    from hitl import approval, tool

    def wire(amount: int) -> str:
        """Wire money."""
        return str(amount)

    gated = approval(tool(wire))
    assert gated.requires_confirmation and gated.approval == hitl.approval.ApprovalType.required
    audited = approval(type="audit")(tool(wire))
    assert audited.approval == hitl.approval.ApprovalType.audit


def test_a_name_hitl_does_not_export_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="has no attribute 'Agnet'"):
        hitl.Agnet  # noqa: B018 - the access is the test


def test_the_error_tree_drawn_in_hitl_errors_is_the_one_python_has():
    """hitl/errors.py draws its classes as a tree: the drawing and the classes agree."""
    import inspect

    import hitl.errors as errors

    classes = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.HitlError)]

    def draw(cls: type, prefix: str = "") -> list[str]:
        children = sorted((c for c in classes if c.__base__ is cls), key=lambda c: c.__name__)
        lines = []
        for i, child in enumerate(children):
            last = i == len(children) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{child.__name__}")
            lines += draw(child, prefix + ("    " if last else "│   "))
        return lines

    drawn = "\n".join(["    HitlError", *("    " + line for line in draw(errors.HitlError))])
    assert drawn in errors.__doc__, drawn
    assert set(errors.__all__) == {c.__name__ for c in classes}
