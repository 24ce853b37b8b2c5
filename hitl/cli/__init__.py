"""The ``hitl`` command: a thin layer over the library (``hitl.worker``, ``hitl.dev.stack``, the client core).

    hitl worker --agents my_pkg.agents          # serve the Agents and Teams of a module
    hitl dev [--agents my_pkg.agents]           # a local stack: Temporal, PostgreSQL, optionally a worker
    hitl serve --agents my_pkg.agents           # the decision service (REST API, event stream)
    hitl tokens create alice -s approvals:decide | hitl tokens list | hitl tokens revoke ID
    hitl approvals list --mine                  # what waits for me (HITL_URL, HITL_TOKEN)
    hitl approvals approve ID | reject ID --reason TEXT | input ID f=v | result ID --value JSON
    hitl runs list --status paused | hitl runs show RUN_ID | hitl runs cancel RUN_ID

``approvals`` and ``runs`` go through the decision service, or with ``--temporal`` straight to
Temporal; their exit codes are :class:`ExitCode`. One module per group of commands: ``local``
(worker, dev), ``service`` (serve, tokens, keys, audit), ``approvals``, ``runs``.
"""

from __future__ import annotations

import os
import sys

from hitl.cli import approvals, local, runs, service  # noqa: F401 - each registers its commands on `app`
from hitl.cli._app import EXIT_CODES_HELP, ExitCode, app
from hitl.cli._common import connected_to_temporal

__all__ = ["app", "main", "ExitCode", "EXIT_CODES_HELP"]


def main() -> None:
    """The console script ``hitl``."""
    try:
        app()
    except SystemExit as exc:
        if not connected_to_temporal():
            raise
        # A short-lived process that made a Temporal client can abort while the interpreter shuts
        # down (temporalio/sdk-python#300: the Rust bridge's threads outlive it; "PyGILState_Release:
        # thread state must be current", SIGABRT; seen in this suite). The command's work is done and
        # its output written: leave without the teardown.
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
