"""Optional packages a toolkit needs (``wikipedia``, ``ddgs``): imported when the toolkit is made, so
a missing one is said at once and by name, and again when a tool runs (from ``sys.modules`` then)."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, package: str, toolkit: str) -> ModuleType:
    """The module ``module``, or an ImportError naming ``package`` and how to install it.

    Raises:
        ImportError: the package is not installed (or cannot be imported), naming it and ``toolkit``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{toolkit} needs the `{package}` package, which is not installed: install it with "
            f"`pip install {package}` ({exc})") from exc
