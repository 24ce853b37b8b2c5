"""The store: hitl's SQL and what it keeps in PostgreSQL.

Owns: the connection (``database``: pools and statements), the migrations (``schema``, ``migrations/``), the
approvals table and its trail (``audit``: hash-chained, sealed, append-only; ``approvals``: records, events,
the inbox's page), the typed records its readers return (``records``: ``Approval``, ``StoredApproval``,
``TrailEvent``, their fields declared once in ``hitl._wire.ApprovalFields``), listing queries
(``queries``), counts (``counts``), sessions (``sessions``), verification of the whole trail
(``verify``), Agno's record dict (``agno``, made at the facade), the service's tables (``tokens``,
``links``, ``idempotency``, ``events``) and its probes (``probes``).
May import: ``hitl._wire`` and the kernel leaves. ``PostgresDb`` (``hitl.db.postgres``, Agno's path) is the
facade over it.
Invariants: every statement is built with ``psycopg.sql`` from identifiers hitl chose, never from a
user's string; every write the mirror makes is an idempotent upsert (activities are retried); text
PostgreSQL cannot hold (NUL) is refused before it reaches SQL.
"""
