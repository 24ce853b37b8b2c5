"""Modules that moved into rooms still import under their old names, as the same module, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import hitl


@pytest.mark.parametrize(("old", "new"), sorted(hitl.MOVED_MODULES.items()))
def test_an_old_path_gives_the_module_at_its_new_place_and_says_so(old, new):
    code = (f"import importlib, warnings\nwith warnings.catch_warnings(record=True) as caught:\n"
            f"    warnings.simplefilter('always')\n    old = importlib.import_module({old!r})\n"
            f"assert old is importlib.import_module({new!r}), old\n"
            f"assert any({new!r} in str(w.message) and w.category is DeprecationWarning for w in caught), caught\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_documented_old_names_still_resolve(monkeypatch):
    """What the README showed before the move: hitl.signing.trust, hitl.telemetry.configure,
    hitl.visibility.register_search_attributes."""
    found = {}
    for old, name in (("hitl.signing", "trust"), ("hitl.telemetry", "configure"), ("hitl.visibility", "register_search_attributes")):
        monkeypatch.delitem(sys.modules, old, raising=False)  # as in a fresh process: the warning comes again
        with pytest.warns(DeprecationWarning, match=old):
            found[old] = getattr(importlib.import_module(old), name)
    assert all(callable(f) for f in found.values())


def test_one_finder_however_often_the_package_is_imported():
    assert sum(getattr(f, "hitl_moved_modules", False) for f in sys.meta_path) == 1
