"""Settings from environment variables; the only place the process reads its environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from drivers.rules.breaker import BreakerSettings

__all__ = ["Settings", "breaker_settings", "get_settings"]


class Settings(BaseSettings):
    """Every knob of the gateway; README.md § Configuration lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str | None = Field(
        default=None, description="libpq URL; unset = embedded PostgreSQL in GATEWAY_DATA_DIR"
    )
    database_read_url: str | None = Field(default=None, description="optional replica for reads")
    gateway_data_dir: Path = Field(default=Path(".pgdata"), description="embedded PostgreSQL data")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)

    jwt_secret: str | None = Field(
        default=None, min_length=32, description="HS256 secret (≥ 32 bytes); unset = JWT disabled"
    )
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    api_key_cache_seconds: float = Field(default=10.0, ge=0)

    graphiql: bool = True
    max_request_bytes: int = Field(
        default=1_048_576, ge=1024, description="largest request body (variables included)"
    )
    introspection: Literal["on", "admin", "off"] = Field(
        default="on", description="who may introspect: everyone, ADMIN only, or nobody"
    )
    max_query_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2_000, ge=1)
    max_query_cost: int = Field(default=50_000, ge=1)

    gateway_compiled_reads: bool = Field(
        default=True, description="serve mapped query operations with one SQL statement"
    )
    subscriber_queue_size: int = Field(
        default=256, ge=1, description="changes buffered per subscriber before it is cut off"
    )
    listener_ping_seconds: float = Field(
        default=10.0, gt=0, description="how often the idle LISTEN connection is checked"
    )
    listener_backoff_max_seconds: float = Field(
        default=10.0, gt=0, description="longest pause between LISTEN reconnect attempts"
    )

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="log lines as text or as JSON objects"
    )
    migrate_on_start: bool = Field(default=True, description="apply migrations when serving")

    # Circuit breaker and Alertmanager (DOMAIN.md §3.7-3.8).
    costsim_drift_threshold: float = Field(default=0.2, ge=0, le=1)
    costsim_drift_warning_threshold: float = Field(default=0.15, ge=0, le=1)
    costsim_failure_threshold: int = Field(default=3, ge=1)
    costsim_schema_error_threshold: int = Field(default=5, ge=1)
    costsim_v2_auto_disable: bool = True
    costsim_auto_recover: bool = True
    costsim_disable_ttl_hours: float = Field(default=24.0, ge=0, description="0 = manual reset")
    costsim_runbook_url: str = "https://runbooks.example.com/costsim/circuit-breaker"
    alertmanager_url: str | None = Field(default=None, description="unset = alerts marked SENT")
    alertmanager_timeout: float = Field(default=10.0, gt=0)
    instance_id: str | None = Field(default=None, description="alert label; else HOSTNAME")
    hostname: str | None = None
    alert_retention_days: int = Field(default=30, ge=1)

    # DOMAIN.md §3.14-3.15: evidence becomes mandatory for ingest paths.
    aos_verification_mode: bool = False

    # Background jobs (DOMAIN.md §7): in this process (on) or only in `gateway worker` (off).
    gateway_background_jobs: bool = True
    job_alert_delivery_seconds: float = Field(default=5.0, gt=0)
    job_alert_purge_seconds: float = Field(default=3600.0, gt=0)
    job_breaker_sweep_seconds: float = Field(default=30.0, gt=0)
    job_override_seconds: float = Field(default=30.0, gt=0)
    job_stale_incident_seconds: float = Field(default=60.0, gt=0)
    job_lesson_reactivation_seconds: float = Field(default=60.0, gt=0)
    job_scope_expiry_seconds: float = Field(default=60.0, gt=0)
    job_idempotency_purge_seconds: float = Field(default=3600.0, gt=0)

    # Subscriptions over Server-Sent Events (issue #17 item 6, gateway/sse.py).
    sse_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="seconds between `: ping` comments on an event stream"
    )

    # Streaming replica (issue 17, item 1): read-your-writes and the replica watcher.
    read_your_writes_timeout_ms: int = Field(
        default=500, ge=0, description="longest wait for the replica to replay a client's write"
    )
    replica_check_seconds: float = Field(
        default=5.0, gt=0, description="how often the replica's health and lag are checked"
    )

    # Issue #17 item 5, OpenTelemetry traces (gateway/tracing.py). The OTLP exporter reads the
    # standard OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER) itself.
    otel_traces: Literal["off", "otlp", "console"] = Field(
        default="off", description="where request traces go: nowhere, OTLP over HTTP, stdout"
    )

    # Production deployment behind PgBouncer (issue #17, part 2; docs/decisions.md).
    database_listen_url: str | None = Field(
        default=None,
        description="direct (unpooled) URL for LISTEN and migrations; unset = DATABASE_URL",
    )
    db_prepared_statements: bool = Field(
        default=True,
        description="named server-side prepared statements; off behind PgBouncer < 1.21",
    )

    @field_validator(
        "database_url",
        "database_read_url",
        "database_listen_url",
        "jwt_secret",
        "alertmanager_url",
        "instance_id",
        "hostname",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    # Trusted documents (issue #17 item 4): requests by document id / APQ hash.
    trusted_documents: Literal["off", "allow", "only"] = Field(
        default="allow",
        description="off: ignore document ids; allow: ids, APQ and any query; only: registered ids",
    )

    # Change notifications through an outbox (issue #16 item 3; docs/decisions.md).
    notify_mode: Literal["outbox", "direct"] = Field(
        default="outbox",
        description="outbox: change rows a publisher sends after commit; direct: pg_notify in "
        "each write transaction (no publisher hop, but commits queue on the NOTIFY lock)",
    )
    outbox_publisher: bool = Field(
        default=True, description="this process may be the database's outbox publisher"
    )
    outbox_poll_seconds: float = Field(
        default=0.01, gt=0, description="how often the publisher looks for new outbox rows"
    )
    outbox_batch_size: int = Field(
        default=1000, ge=1, description="outbox rows deleted and sent per publisher statement"
    )


def breaker_settings(settings: Settings) -> BreakerSettings:
    """The plain breaker/alert settings the resolvers and jobs receive."""
    return BreakerSettings(
        drift_threshold=settings.costsim_drift_threshold,
        drift_warning_threshold=settings.costsim_drift_warning_threshold,
        failure_threshold=settings.costsim_failure_threshold,
        schema_error_threshold=settings.costsim_schema_error_threshold,
        auto_disable=settings.costsim_v2_auto_disable,
        auto_recover=settings.costsim_auto_recover,
        disable_ttl_hours=settings.costsim_disable_ttl_hours,
        alertmanager_url=settings.alertmanager_url,
        alertmanager_timeout=settings.alertmanager_timeout,
        instance_id=settings.instance_id or settings.hostname or "aos-unknown",
        runbook_url=settings.costsim_runbook_url,
        alert_retention_days=settings.alert_retention_days,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
