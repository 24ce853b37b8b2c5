"""Serve agents from a checkout: ``python worker.py --agents my_pkg.my_module``.

The same as the installed ``hitl worker`` command (``hitl/cli``); the worker itself is ``hitl/worker/``.
"""

import sys

from hitl.cli import app

if __name__ == "__main__":
    app(["worker", *sys.argv[1:]])
