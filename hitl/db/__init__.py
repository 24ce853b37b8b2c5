"""Databases an agent records to: ``PostgresDb`` (Agno's ``agno.db.postgres``) and what stands behind it.

Owns: the approvals table and its trail (``_audit``, hash-chained, append-only), counts, sessions, the
migrations (``_schema``), verification (``_verify``), Agno's record shape (``_agno``).
Invariants: every statement is built with ``psycopg.sql`` from identifiers hitl chose, never from a
user's string; every write the mirror makes is an idempotent upsert (activities are retried); text
that PostgreSQL cannot hold (NUL) is refused before it reaches SQL.
"""
