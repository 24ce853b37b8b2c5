"""Raw figures a benchmark keeps for ``python -m bench.report``: ``bench/data/<name>.json``.

A benchmark saves what it measured (latency samples in ms, rates, ratios, the command and the
date) beside its floor's, so the report draws from the last run of each without re-running it.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


def save(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` (JSON-able) as ``bench/data/<name>.json``, with the date and the command that made it."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"{name}.json"
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    command = " ".join(["python -m", main.name if main else Path(sys.argv[0]).name, *sys.argv[1:]])
    document = {"date": datetime.date.today().isoformat(), "command": command, **data}
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path


def load(name: str) -> dict[str, Any] | None:
    """The last saved figures of ``name``, or None when that benchmark was never run here."""
    path = DATA / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
