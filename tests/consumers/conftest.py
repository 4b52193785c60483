"""Stores to test against: SQLite always, PostgreSQL when there is one.

tests/conftest.py sets VARDGARANTI_TEST_DATABASE_URL to a local server's test database
when none is configured; without a server the PostgreSQL cases are skipped, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from consumers.store import Store, StoreError
from tests.conftest import PG_ENV


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield Store(f"sqlite:///{tmp_path / 'store.db'}")
        return
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL: no server on 127.0.0.1:5432 and {PG_ENV} is not set")
    try:
        s = Store(url)
    except StoreError as exc:
        pytest.fail(f"{PG_ENV} is set but unusable: {exc}")
    SQLModel.metadata.drop_all(s.engine)
    SQLModel.metadata.create_all(s.engine)
    yield s
    SQLModel.metadata.drop_all(s.engine)
    s.engine.dispose()
