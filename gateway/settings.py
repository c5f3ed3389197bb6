"""Settings from environment variables; the only place the process reads its environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


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
    max_query_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2_000, ge=1)
    max_query_cost: int = Field(default=50_000, ge=1)

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
    migrate_on_start: bool = Field(default=True, description="apply migrations when serving")

    @field_validator("database_url", "database_read_url", "jwt_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
