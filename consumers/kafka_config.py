"""kafka-python client settings from the settings model, shared by every Kafka client we make.

The admin client (`topics create`), the replay producer and the SQL sink's consumer all
connect the same way: the same bootstrap list, security protocol, SASL credentials and CA
file; the Faust worker's settings pass the same checks (`check`). Misconfigurations that
a broker would only report as a hang or a vague disconnect (SASL without credentials, a CA
file that does not exist) are caught here with one line naming the setting.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

from consumers.retry import Backoff
from models.settings import ENV_PREFIX, Settings

# SASL mechanisms that authenticate with the username/password settings (GSSAPI and
# OAUTHBEARER need configuration the settings model does not carry).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
BROKER_MAX_BACKOFF_S = 5.0  # a broker that is back is noticed within this


class KafkaConfigError(ValueError):
    """A Kafka setting that cannot work; the message is one line naming the setting."""


def parse_bootstrap(text: str) -> list[str]:
    """`host:port[,host:port…]` as a list; raises KafkaConfigError on anything else."""
    servers = [part.strip() for part in text.split(",")]
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise KafkaConfigError(
                f"Kafka bootstrap {text!r}: expected host:port[,host:port…]")
    return servers


def check(settings: Settings) -> None:
    """Refuse a Kafka setting that cannot work (KafkaConfigError, one line naming it): for
    clients that do not take kafka-python's keyword arguments, such as the Faust worker."""
    client_kwargs(settings)


def client_kwargs(
    settings: Settings, bootstrap: str | None = None, client_id: str = "vardgaranti"
) -> dict[str, Any]:
    """Keyword arguments for KafkaAdminClient / KafkaProducer / KafkaConsumer.

    `bootstrap` (a command-line option) overrides `VARDGARANTI_KAFKA_BOOTSTRAP`.
    """
    kwargs: dict[str, Any] = {
        "bootstrap_servers": parse_bootstrap(bootstrap or settings.kafka_bootstrap),
        "security_protocol": settings.kafka_security_protocol,
        "client_id": client_id,
    }
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        kwargs.update(_sasl(settings))
    else:
        for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"):
            if getattr(settings, name) is not None:
                raise KafkaConfigError(
                    f"{_env(name)} is set but {_env('kafka_security_protocol')} is {protocol} "
                    "(SASL needs SASL_PLAINTEXT or SASL_SSL)")
    if settings.kafka_ssl_cafile is not None:
        if not protocol.endswith("SSL"):
            raise KafkaConfigError(
                f"{_env('kafka_ssl_cafile')} is set but {_env('kafka_security_protocol')} is "
                f"{protocol} (TLS needs SSL or SASL_SSL)")
        if not Path(settings.kafka_ssl_cafile).is_file():
            raise KafkaConfigError(
                f"{_env('kafka_ssl_cafile')}: no such file: {settings.kafka_ssl_cafile}")
        kwargs["ssl_cafile"] = settings.kafka_ssl_cafile
    return kwargs


def unreachable(settings: Settings, timeout_s: float = 3.0) -> str | None:
    """None when the cluster answers (a bootstrap server accepts a connection and returns
    its metadata); else, in a few words, why not."""
    servers = client_kwargs(settings)["bootstrap_servers"]
    reason = "no bootstrap server"
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                break
        except OSError as exc:
            reason = f"{server}: {exc.strerror or exc}"
    else:
        return reason
    return _no_metadata(settings, timeout_s)


def _no_metadata(settings: Settings, timeout_s: float) -> str | None:
    """A consumer without a group bootstraps in its constructor: that is the probe. (A broker
    that is starting, or a proxy in front of one that is down, accepts and then hangs up.)"""
    from kafka.errors import KafkaError

    quiet = logging.getLogger("kafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its retries are ours to report, in one line
    try:
        new_consumer(settings, "vardgaranti-probe",
                     bootstrap_timeout_ms=int(timeout_s * 1000)).close()
    except KafkaError as exc:
        return str(exc).splitlines()[0]
    finally:
        quiet.setLevel(level)
    return None


def new_consumer(settings: Settings, client_id: str, **config: Any) -> Any:
    """A kafka-python KafkaConsumer with our connection settings. One that cannot bootstrap
    raises, and its network thread is stopped first (kafka-python would leave it running)."""
    from kafka import KafkaConsumer
    from kafka.net.compat import KafkaNetClient

    clients: list[Any] = []

    def client(**options: Any) -> Any:
        clients.append(KafkaNetClient(**options))
        return clients[-1]

    try:
        return KafkaConsumer(kafka_client=client, **config,
                             **client_kwargs(settings, client_id=client_id))
    except Exception:
        for made in clients:
            made.close()
        raise


def wait_for_broker(settings: Settings, stop: threading.Event, log: logging.Logger) -> bool:
    """Block until a bootstrap server answers (True) or `stop` is set (False), saying so in
    one line per attempt and backing off (a service started before its broker waits)."""
    backoff = Backoff("broker", stop, log, BROKER_MAX_BACKOFF_S)
    while not stop.is_set():
        reason = unreachable(settings)
        if reason is None:
            return True
        backoff.wait(reason)
    return False


def _sasl(settings: Settings) -> dict[str, Any]:
    protocol = settings.kafka_security_protocol
    for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"):
        if not getattr(settings, name):
            raise KafkaConfigError(
                f"{_env(name)} is required when {_env('kafka_security_protocol')} is {protocol}")
    mechanism = (settings.kafka_sasl_mechanism or "").upper()
    if mechanism not in SASL_MECHANISMS:
        raise KafkaConfigError(
            f"{_env('kafka_sasl_mechanism')}: {settings.kafka_sasl_mechanism!r} is not one of "
            f"{', '.join(SASL_MECHANISMS)}")
    assert settings.kafka_sasl_password is not None  # checked above
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
    }


def _env(field: str) -> str:
    return ENV_PREFIX + field.upper()
