"""The PostgreSQL the migrations need (15, for NULLS NOT DISTINCT): an older server is refused clearly, at migration time."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from hitl import PostgresDb
from hitl.errors import ConfigurationError
from hitl.store import schema


def exists(url: str, table: str) -> tuple[bool, int]:
    """Whether ``table`` exists, and how many migrations are recorded for it."""
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]
        if not conn.execute("SELECT to_regclass('hitl_schema_migrations') IS NOT NULL").fetchone()[0]:
            return found, 0
        marked = conn.execute("SELECT count(*) FROM hitl_schema_migrations WHERE approvals_table = %s", (table,)).fetchone()[0]
    return found, marked


def test_the_version_read_is_the_servers_own(database_url):
    """server_version_num reads what the server reports (SHOW server_version_num), and this one is new enough."""
    with psycopg.connect(database_url) as conn:
        shown = int(conn.execute("SHOW server_version_num").fetchone()[0])
        assert schema.server_version_num(conn) == shown
    assert shown >= 150000
    schema.check_server_version(shown)


def test_migrating_on_a_server_older_than_15_is_refused_naming_both_versions(database_url, monkeypatch):
    """A server reporting 14.9: migrate() raises a ConfigurationError naming 14.9 and 15 and changes nothing; the
    same database, reporting its real version, then migrates."""
    real, read = schema.server_version_num, []

    def as_if_14_9(conn):
        read.append(real(conn))  # the server is asked as always; only the number it gave is replaced
        return 140009

    monkeypatch.setattr(schema, "server_version_num", as_if_14_9)
    table = f"approvals_{uuid.uuid4().hex[:8]}"
    db = PostgresDb(database_url, approvals_table=table)
    try:
        with pytest.raises(ConfigurationError, match=r"^PostgreSQL 14\.9 \(server_version_num 140009\) is too old: "
                                                      r"hitl's migrations need PostgreSQL 15 or later"):
            db.migrate()
        assert read and read[0] >= 150000
        assert exists(database_url, table) == (False, 0)  # refused before any migration ran
        monkeypatch.undo()
        db.migrate()
        assert exists(database_url, table) == (True, len(schema.MIGRATIONS))
    finally:
        db.close()


@pytest.mark.parametrize(("num", "named"), [(149999, "14.9999"), (140000, "14.0"), (90624, "9.6.24")])
def test_older_versions_are_named_as_people_write_them(num, named):
    """The refusal names the version found as people write it (9.6.24 before PostgreSQL 10) and the one needed."""
    with pytest.raises(ConfigurationError, match=rf"^PostgreSQL {named} \(server_version_num {num}\) is too old: "
                                                 r"hitl's migrations need PostgreSQL 15 or later"):
        schema.check_server_version(num)


@pytest.mark.parametrize("num", [150000, 150004, 170002])
def test_15_and_later_pass(num):
    """15.0 itself, and anything later, is accepted."""
    schema.check_server_version(num)
