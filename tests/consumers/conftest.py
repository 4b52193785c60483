"""Stores to test against: SQLite always, PostgreSQL when a URL is configured.

`.ci/run` sets VARDGARANTI_TEST_DATABASE_URL to the machine's PostgreSQL; elsewhere the
PostgreSQL cases are skipped with a message saying how to enable them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from consumers.store import Store, StoreError

PG_URL = os.environ.get("VARDGARANTI_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield Store(f"sqlite:///{tmp_path / 'store.db'}")
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: set VARDGARANTI_TEST_DATABASE_URL (postgresql+psycopg://…)")
    try:
        s = Store(PG_URL)
    except StoreError as exc:
        pytest.fail(f"VARDGARANTI_TEST_DATABASE_URL is set but unusable: {exc}")
    SQLModel.metadata.drop_all(s.engine)
    SQLModel.metadata.create_all(s.engine)
    yield s
    SQLModel.metadata.drop_all(s.engine)
    s.engine.dispose()
