"""One patch marker for every change before it, instead of one per change in every new run.

Each change to the run's code is guarded by ``workflow.patched(id)`` so that runs recorded before
it replay as they ran. But a new run records a marker for each patch it passes, and Temporal's
core upserts the ``TemporalChangeVersion`` search attribute with each: a history event and a
visibility write per patch, five per decided run, a share of what a run costs the server.

A run that starts on this code records :data:`GENERATION` once, in its first workflow task; every
change older than it is then on, without a marker of its own. Runs recorded before the generation
lack its marker, so they replay change by change, exactly as they ran. A later change is patched as
usual, and folds into the next generation.
"""

from __future__ import annotations

from temporalio import workflow

GENERATION = "hitl-generation-2026-12"
"""Every change up to December 2026: visibility, recorded verdicts, decided tools as remote
activities, team decisions by signal, member reports in order, members' outcomes, checked changes,
upgrade on request. And what it alone brings: decision verdicts recorded only when refused
(``verdicts.py``), no upsert of an empty pending-tools list at a run's start (``visibility.py``)."""


def begin() -> bool:
    """Whether this run has the generation; asked first in the run's ``__init__``, so that a replay,
    which sees the marker from its first activation, gives the same answer."""
    return workflow.patched(GENERATION)


def current() -> bool:
    """Whether this run has the generation (for a change of behaviour it alone brings)."""
    return workflow.instance()._generation


def patched(patch_id: str) -> bool:
    """``workflow.patched(patch_id)`` for a change the generation includes: on, with no marker, in a
    run that has the generation."""
    return current() or workflow.patched(patch_id)
