"""Databases an agent records to: ``PostgresDb`` (Agno's ``agno.db.postgres``), the facade over
``hitl.store`` (the SQL) and ``hitl._core`` (deciding an approval from its record)."""
