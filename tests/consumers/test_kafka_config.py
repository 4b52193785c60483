"""Kafka client settings: one place turns the settings model into kafka-python kwargs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from pydantic import SecretStr

from consumers.kafka_config import KafkaConfigError, client_kwargs, parse_bootstrap
from models.settings import Settings


@pytest.fixture(autouse=True)
def _no_kafka_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BOOTSTRAP", "SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME",
                 "SASL_PASSWORD", "SSL_CAFILE"):
        monkeypatch.delenv(f"VARDGARANTI_KAFKA_{name}", raising=False)


def settings(**values: Any) -> Settings:
    return Settings(**values)


def sasl(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "scram-sha-512",
        "kafka_sasl_username": "monitor", "kafka_sasl_password": SecretStr("s3cret-pw"),
    }
    return settings(**{**base, **values})


def test_plaintext_defaults() -> None:
    assert client_kwargs(settings(kafka_bootstrap="k1:9092, k2:9093")) == {
        "bootstrap_servers": ["k1:9092", "k2:9093"],
        "security_protocol": "PLAINTEXT",
        "client_id": "vardgaranti",
    }


def test_bootstrap_option_and_client_id_override_settings() -> None:
    kwargs = client_kwargs(settings(kafka_bootstrap="k1:9092"), "[::1]:19092", client_id="x")
    assert kwargs["bootstrap_servers"] == ["[::1]:19092"]
    assert kwargs["client_id"] == "x"


@pytest.mark.parametrize("text", ["", "kafka", "kafka:", ":9092", "kafka:0", "kafka:70000",
                                  "kafka:port", "k1:9092,", "k1:9092,,k2:9092"])
def test_bad_bootstrap_is_one_line_error(text: str) -> None:
    with pytest.raises(KafkaConfigError, match=r"expected host:port") as info:
        parse_bootstrap(text)
    assert "\n" not in str(info.value)


def test_sasl_credentials_are_passed_in_plain_for_the_client() -> None:
    kwargs = client_kwargs(sasl())
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "monitor"
    assert kwargs["sasl_plain_password"] == "s3cret-pw"


@pytest.mark.parametrize(("missing", "env"), [
    ("kafka_sasl_mechanism", "VARDGARANTI_KAFKA_SASL_MECHANISM"),
    ("kafka_sasl_username", "VARDGARANTI_KAFKA_SASL_USERNAME"),
    ("kafka_sasl_password", "VARDGARANTI_KAFKA_SASL_PASSWORD"),
])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_needs_mechanism_username_and_password(missing: str, env: str, protocol: str) -> None:
    with pytest.raises(KafkaConfigError) as info:
        client_kwargs(sasl(kafka_security_protocol=protocol, **{missing: None}))
    assert str(info.value) == (
        f"{env} is required when VARDGARANTI_KAFKA_SECURITY_PROTOCOL is {protocol}")


def test_empty_password_is_missing() -> None:
    with pytest.raises(KafkaConfigError, match="VARDGARANTI_KAFKA_SASL_PASSWORD is required"):
        client_kwargs(sasl(kafka_sasl_password=SecretStr("")))


def test_unsupported_mechanism_is_named_and_password_never_shown() -> None:
    expected = "VARDGARANTI_KAFKA_SASL_MECHANISM: 'GSSAPI' is not one of"
    with pytest.raises(KafkaConfigError, match=expected) as info:
        client_kwargs(sasl(kafka_sasl_mechanism="GSSAPI"))
    assert "s3cret-pw" not in str(info.value)


def test_sasl_settings_without_a_sasl_protocol_are_refused() -> None:
    with pytest.raises(KafkaConfigError, match="VARDGARANTI_KAFKA_SASL_USERNAME is set but"):
        client_kwargs(settings(kafka_sasl_username="monitor"))


def test_ssl_cafile(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    kwargs = client_kwargs(settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(ca)))
    assert kwargs["ssl_cafile"] == str(ca)
    assert client_kwargs(sasl(kafka_ssl_cafile=str(ca)))["ssl_cafile"] == str(ca)
    with pytest.raises(KafkaConfigError, match="VARDGARANTI_KAFKA_SSL_CAFILE: no such file"):
        client_kwargs(settings(kafka_security_protocol="SSL",
                               kafka_ssl_cafile=str(tmp_path / "missing.pem")))
    with pytest.raises(KafkaConfigError, match="VARDGARANTI_KAFKA_SSL_CAFILE is set but"):
        client_kwargs(settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_ssl_cafile=str(ca),
                               kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u",
                               kafka_sasl_password=SecretStr("p")))


@pytest.mark.parametrize("client", [KafkaAdminClient, KafkaProducer, KafkaConsumer])
def test_every_key_is_a_setting_of_every_kafka_python_client(client: type, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    kwargs = client_kwargs(sasl(kafka_ssl_cafile=str(ca)))
    assert set(kwargs) <= set(client.DEFAULT_CONFIG)  # type: ignore[attr-defined]
