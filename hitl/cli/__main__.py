"""``python -m hitl.cli``: the ``hitl`` command."""

from hitl.cli import main

main()
