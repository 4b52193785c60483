"""Grafana's read-only role in a real PostgreSQL: the store grants it the window_counts view
and the tables behind it, nothing else, and it cannot write."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlmodel import SQLModel

from consumers.sqlviews import READABLE, READER_ROLE, VIEW
from consumers.store import Store
from models import measures as m

PG_URL = os.environ.get("VARDGARANTI_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="PostgreSQL: set VARDGARANTI_TEST_DATABASE_URL (postgresql+psycopg://…)")


@pytest.fixture
def store() -> Iterator[Store]:
    """A fresh store made while the role exists (as the init script leaves it in compose);
    the role is dropped again if this test made it."""
    assert PG_URL
    s = Store(PG_URL)
    with s.engine.begin() as conn:
        made = not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                {"r": READER_ROLE}).first()
        if made:
            conn.execute(text(f"CREATE ROLE {READER_ROLE} NOLOGIN"))
    SQLModel.metadata.drop_all(s.engine)
    SQLModel.metadata.create_all(s.engine)
    s.write_batch([], [], {(m.CLOCKS, 0, "u1", 738900, 0): 2, (m.WAITING, 0, "u1", 738900, 0): 2},
                  [])
    yield s
    SQLModel.metadata.drop_all(s.engine)
    if made:
        try:
            with s.engine.begin() as conn:
                conn.execute(text(f"DROP OWNED BY {READER_ROLE}"))
                conn.execute(text(f"DROP ROLE {READER_ROLE}"))
        except DBAPIError:
            pass  # a store in another database of the server was granted to it meanwhile
    s.engine.dispose()


def _as_reader(s: Store, sql: str) -> list[tuple[object, ...]]:
    with s.engine.connect() as conn:
        conn.execute(text(f"SET ROLE {READER_ROLE}"))
        try:
            return [tuple(r) for r in conn.execute(text(sql))]
        finally:
            conn.rollback()


def test_reader_reads_the_view_and_nothing_else(store: Store) -> None:
    rows = _as_reader(store, f"SELECT unit_id, waiting FROM {VIEW} WHERE window_name = '7d'")
    assert sorted(rows) == [("ALL", 2), ("u1", 2)]
    for table in READABLE:
        _as_reader(store, f"SELECT * FROM {table} LIMIT 1")
    for table in ("clocks", "events", "notices", "dead_letters"):
        with pytest.raises(ProgrammingError, match="permission denied"):
            _as_reader(store, f"SELECT * FROM {table} LIMIT 1")
    with pytest.raises(ProgrammingError, match="permission denied"):
        _as_reader(store, "DELETE FROM daily_counts")
