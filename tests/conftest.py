"""Fixtures shared by every test package: one Kafka-protocol test broker per session, and
the PostgreSQL the store tests use.

PostgreSQL: `VARDGARANTI_TEST_DATABASE_URL` when set; otherwise, when a server answers on
127.0.0.1:5432, its database `vardgaranti_test` (created if missing; user `PGUSER` or
`postgres`, password from `PGPASSWORD` if any). The header of the run and its last line
say which, or why the PostgreSQL cases are skipped.
"""

from __future__ import annotations

import contextlib
import os
import socket

import pytest

pytest_plugins: list[str] = ["tests.support.kafka"]

PG_ENV = "VARDGARANTI_TEST_DATABASE_URL"
LOCAL = ("127.0.0.1", 5432)
LOCAL_DB = "vardgaranti_test"
_status: list[str] = []  # one line: where the PostgreSQL tests run, or why not


def local_postgres() -> tuple[str | None, str]:
    """(URL of the local test database or None, one line saying what was found)."""
    import psycopg
    from psycopg import errors, sql

    where = f"{LOCAL[0]}:{LOCAL[1]}"
    try:
        socket.create_connection(LOCAL, timeout=1).close()
    except OSError:
        return None, f"no server answers on {where}"
    user = os.environ.get("PGUSER", "postgres")
    try:
        with psycopg.connect(host=LOCAL[0], port=LOCAL[1], user=user, dbname="postgres",
                             autocommit=True, connect_timeout=3) as conn:
            known = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (LOCAL_DB,))
            if known.fetchone() is None:
                # another test run may create it meanwhile
                with contextlib.suppress(errors.DuplicateDatabase):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(LOCAL_DB)))
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        return None, f"the server on {where} refused user {user!r}: {reason}"
    return f"postgresql+psycopg://{user}@{where}/{LOCAL_DB}", f"database {LOCAL_DB} on {where}"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(PG_ENV):
        _status.append(f"PostgreSQL tests run against {PG_ENV}")
        return
    url, found = local_postgres()
    if url is None:
        _status.append(f"PostgreSQL tests SKIPPED: {found}; start PostgreSQL or set {PG_ENV}")
        return
    os.environ[PG_ENV] = url  # read by every PostgreSQL fixture
    _status.append(f"PostgreSQL tests run against {found}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return _status


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _status:
        terminalreporter.write_line(line, yellow="SKIPPED" in line, bold=True)
