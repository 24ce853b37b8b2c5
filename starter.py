"""Run the reference's Quick Start end to end: ``python starter.py``.

Needs Temporal (``TEMPORAL_ADDRESS``), PostgreSQL (``DATABASE_URL``) and a worker serving
``examples.quickstart``; ``python dev.py demo`` starts all of them and then this.
"""

from __future__ import annotations

import sys

from hitl.errors import HitlError


def main() -> int:
    from examples import quickstart

    try:
        quickstart.main()
    except HitlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
