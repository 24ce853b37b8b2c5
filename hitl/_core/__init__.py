"""The client core: the one path from every caller (agents, teams, the database facade, the service, the
CLI) to Temporal, and what a caller's process keeps beside it.

Owns: the Temporal client per event loop (``client``), the sync bridge (``sync``), the agent registry
(``registry``: a definition found by name), starting, reading, deciding and listing runs (``runs``,
``listing``), deciding an approval from its record (``approvals``, ``deciding``), approvals as callers are
shown them (``views``: the service's bodies, what the CLI prints), read-your-writes
(``records``), sessions (``sessions``), what a run's tools may read of their caller (``context``), text
streamed from the model (``stream``), Agno's hooks (``hooks``), and a process serving its own agents
(``inline``).
May import: ``hitl.security``, ``hitl.observability``, ``hitl.notify``, ``hitl.store``, ``hitl._wire``, the
tools and the kernel leaves; never the public classes above it, the worker, the service or the CLI. The
one call up, ``inline`` building a worker for a script that serves itself, is looked up by name when it
is needed (named in the layers contract, pyproject.toml).
Invariants: no SQL (statements live in ``hitl.store``); a decision reaches Temporal as an update whose
answer says what the run did with it; nothing secret goes into a run's input or history.
"""
