"""One settings model for every runtime: environment variables `VARDGARANTI_…`.

Command-line options override these. Documented in the README's "Settings" table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.calendar import WorkCalendar
from models.clocks import Rules


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VARDGARANTI_", extra="ignore")

    database_url: str = "sqlite:///vardgaranti.db"
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    api_token: SecretStr | None = None

    allowed_lateness: int = Field(0, ge=0, description="seconds subtracted for the watermark")
    live_watermark: bool = Field(False, description="use the wall clock when it is later")
    grace_days: int = Field(25, ge=0, description="a month is final this long after its end")
    holidays_are_weekdays: bool = False
    calendar_country: str = "SE"
    mov_mode: Literal["pause", "exclude"] = "pause"
    min_cases: int = Field(20, ge=1, description="smaller cells are suppressed in dashboards")

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

    @property
    def allowed_lateness_us(self) -> int:
        return self.allowed_lateness * 1_000_000
