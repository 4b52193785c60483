"""Fixtures of the integration tests: a worker-and-sink stack on the session's test broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.streaming import Stack


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    """Fresh topics for one test; the processes it starts are stopped after it."""
    s = Stack(kafka_bootstrap, tmp_path)
    s.create_topics()
    try:
        yield s
    finally:
        s.close()
