"""`make test` finds a local PostgreSQL by itself, and says so when there is none."""

from __future__ import annotations

import os
import socket

import pytest

from tests import conftest


def test_no_server_is_said_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing answers there
    monkeypatch.setattr(conftest, "LOCAL", ("127.0.0.1", port))
    url, found = conftest.local_postgres()
    assert url is None
    assert found == f"no server answers on 127.0.0.1:{port}"


def test_a_local_server_gives_the_test_database(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = os.environ.get(conftest.PG_ENV, "")
    if "@127.0.0.1:5432/" not in configured:
        pytest.skip("needs the local PostgreSQL on 127.0.0.1:5432")
    # the configured database exists already: found, not created
    monkeypatch.setattr(conftest, "LOCAL_DB", configured.rsplit("/", 1)[1])
    monkeypatch.setenv("PGUSER", configured.split("//", 1)[1].split("@", 1)[0])
    url, found = conftest.local_postgres()
    assert url == configured
    assert found == f"database {conftest.LOCAL_DB} on 127.0.0.1:5432"
