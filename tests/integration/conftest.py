"""Fixtures for integration tests (the root conftest may later register them via pytest_plugins)."""

from tests.support.kafka import (  # noqa: F401
    kafka_bootstrap,
    kafka_broker,
    kafka_is_mock,
    private_mock_broker,
)
