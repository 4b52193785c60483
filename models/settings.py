"""One settings model for every runtime: environment variables `VARDGARANTI_…`.

Command-line options override these. Documented in docs/settings.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.calendar import WorkCalendar
from models.clocks import Rules
from models.disclosure import GRACE_DAYS, MIN_CASES, Disclosure

ENV_PREFIX = "VARDGARANTI_"
# SQLite's page cache per connection, MB. It fills as the file grows (a long-running sink
# or worker holds up to this much); the default is measured in docs/live-view.md.
SQLITE_CACHE_MB = 8


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str = "sqlite:///vardgaranti.db"
    sqlite_cache_mb: int = Field(
        SQLITE_CACHE_MB, ge=1, description="page cache of each SQLite connection, MB")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    api_token: SecretStr | None = None

    allowed_lateness: int = Field(0, ge=0, description="seconds subtracted for the watermark")
    live_watermark: bool = Field(False, description="use the wall clock when it is later")
    grace_days: int = Field(
        GRACE_DAYS, ge=0, description="a month is final once the watermark is this far past it")
    holidays_are_weekdays: bool = False
    calendar_country: str = "SE"
    mov_mode: Literal["pause", "exclude"] = "pause"
    min_cases: int = Field(
        MIN_CASES, ge=1, description="a measure on fewer cases is shown as '< N'")

    kafka_bootstrap: str = "localhost:9092"
    events_topic: str = "vardgaranti.events"
    dlq_topic: str = "vardgaranti.events.dlq"
    breaches_topic: str = "vardgaranti.breaches"
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(1, ge=1)
    app_id: str = Field("vardgaranti", description="worker group id and changelog prefix")
    worker_data_dir: str = Field("vardgaranti-data", description="the worker's local state")
    sink_group: str = Field("vardgaranti-sink", description="consumer group of the SQL sink")
    sink_port: int = Field(8001, ge=1, le=65535, description="health and metrics of the sink")
    kafka_session_timeout: float = Field(
        60.0, gt=0, description="seconds before a silent worker leaves its group")
    kafka_heartbeat_interval: float = Field(3.0, gt=0, description="seconds between heartbeats")
    # Kafka answers a waiting fetch as soon as data arrives, so the wait only bounds an idle
    # poll; linger trades a few ms of latency for fewer, larger produce requests.
    kafka_fetch_max_wait_ms: int = Field(
        500, ge=0, description="longest a worker's fetch waits on the broker for data")
    kafka_producer_linger_ms: int = Field(
        5, ge=0, description="how long a worker's producer waits to fill a batch")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None

    def rules(self) -> Rules:
        return Rules(
            WorkCalendar(self.calendar_country, self.holidays_are_weekdays),
            mov_excludes=self.mov_mode == "exclude",
        )

    def disclosure(self) -> Disclosure:
        return Disclosure(self.grace_days, self.min_cases)

    @property
    def allowed_lateness_us(self) -> int:
        return self.allowed_lateness * 1_000_000


def bad_setting(exc: ValidationError) -> str:
    """One line naming the environment variable and what is wrong with it."""
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err["loc"])
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{ENV_PREFIX}{field.upper()}: {err['msg']}{more}"
