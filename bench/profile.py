"""Where the time goes: CPU seconds per process, a py-spy profile of a phase, events per run.

Used by ``python -m bench.scale --profile DIR``: the breakdown issue 13 asks for before anything
is changed. py-spy samples the worker from outside (no code in the worker, ~1% overhead).
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def server_pid(port: int) -> int | None:
    """The dev server listening on ``port`` (found by its command line)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"start-dev" in cmd and str(port).encode() in cmd:
                return int(entry.name)
    return None


class Sampled:
    """``py-spy record`` of a process while the block runs; ``top()`` reads what it spent time in."""

    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sampled:
        spy = shutil.which("py-spy") or str(Path(os.sys.executable).parent / "py-spy")
        self.proc = subprocess.Popen([spy, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
                                      "--output", str(self.out), "--nonblocking"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *_: Any) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)

    def top(self, n: int = 25) -> tuple[int, list[tuple[str, float]]]:
        """(samples, [(bucket, share of samples)]): each sample counted once per bucket it passes through."""
        buckets: collections.Counter[str] = collections.Counter()
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            for name in {bucket_of(frame) for frame in stack.split(";")} - {None}:
                buckets[name] += int(count)
        return total, [(k, v / total) for k, v in buckets.most_common(n)] if total else []


# Inclusive time by what the frame belongs to: the buckets issue 13 names, and the rest by module.
_BUCKETS = [
    ("workflow activations (all workflow code, in the sandbox)", "activate (temporalio/worker/_workflow_instance.py"),
    ("making workflow instances (a new run, or an evicted one to replay)", "_create_workflow_instance"),
    (" . sandbox: importing a run's workflow module", "_importer.py"),
    (" . hitl workflow code", "(workflows/"),
    (" . search attributes", "visibility.py"),
    ("activities", "temporalio/worker/_activity.py"),
    (" . model call (openai client over HTTP)", "activities/model.py"),
    (" . tool", "activities/tools.py"),
    (" . audit mirror (PostgreSQL)", "activities/audit.py"),
    ("completing activations (encoding, to the Rust core)", "complete_workflow_activation"),
    ("payload conversion", "converter/"),
    ("pydantic (de)serialisation", "pydantic/"),
    ("Rust core and gRPC (bridge)", "temporalio/bridge/"),
]


def bucket_of(frame: str) -> str | None:
    for name, marker in _BUCKETS:
        if marker in frame:
            return name
    return None


async def events_per_run(client: Any, workflow_ids: list[str]) -> float:
    """Mean history events of a workflow id, every run of its continue-as-new chain counted."""
    total = 0
    for workflow_id in workflow_ids:
        description = await client.get_workflow_handle(workflow_id).describe()
        run: str | None = description.raw_description.workflow_execution_info.first_run_id
        while run:
            history = await client.get_workflow_handle(workflow_id, run_id=run).fetch_history()
            total += len(history.events)
            last = history.events[-1]
            run = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None
    return total / max(1, len(workflow_ids))


def event_kinds(history: Any) -> collections.Counter[str]:
    from temporalio.api.enums.v1 import EventType

    return collections.Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events)
