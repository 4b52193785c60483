"""Fixtures shared by every test package: one Kafka-protocol test broker per session."""

pytest_plugins: list[str] = ["tests.support.kafka"]
