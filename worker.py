"""Serve agents from a checkout: ``python worker.py --agents my_pkg.my_module``.

The same as the installed ``hitl worker`` command; the code is ``hitl/worker/__init__.py``.
"""

from hitl.worker import main

if __name__ == "__main__":
    main()
