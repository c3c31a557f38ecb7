"""Settings: pydantic-settings with one env prefix per service.

Shared values use the ``CORTEX_`` prefix (``CORTEX_ENV``, ``CORTEX_NATS_URL``); each
service's own values use ``CORTEX_<SERVICE>_`` (``CORTEX_BOOKING_DATABASE_URL``).
A field marked with :func:`secret_field` keeps a development default that is refused
when ``CORTEX_ENV`` is anything but ``development`` or ``test``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SECRET_MARK = "cortex_dev_default"  # noqa: S105 (a schema marker, not a password)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def secret_field(dev_default: str, description: str) -> Any:
    """A secret with a development default that production refuses to start with."""
    return Field(
        default=SecretStr(dev_default),
        description=description,
        json_schema_extra={_SECRET_MARK: True},
    )


def shared_field(default: Any, env: str, description: str) -> Any:
    """A value every service reads from the same variable, ignoring the service prefix."""
    return Field(default=default, validation_alias=AliasChoices(env), description=description)


class CortexSettings(BaseSettings):
    """Base of every service's settings. Subclasses set ``env_prefix``."""

    # an empty variable (compose passes `${X:-}` through) means "not set", not ""
    model_config = SettingsConfigDict(
        extra="ignore", env_file=None, populate_by_name=True, env_ignore_empty=True
    )

    env: Environment = shared_field(
        Environment.DEVELOPMENT, "CORTEX_ENV", "development, test or production"
    )
    nats_url: str = shared_field(
        "nats://127.0.0.1:4222", "CORTEX_NATS_URL", "NATS server URL(s), comma separated"
    )
    log_level: str = shared_field("INFO", "CORTEX_LOG_LEVEL", "Python log level")
    log_format: str = shared_field("json", "CORTEX_LOG_FORMAT", "json or text")
    rpc_timeout_seconds: float = shared_field(
        5.0, "CORTEX_RPC_TIMEOUT", "How long a NATS request waits for its reply"
    )

    @property
    def is_development(self) -> bool:
        return self.env in (Environment.DEVELOPMENT, Environment.TEST)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Self:
        if self.is_development:
            return self
        offending = []
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra
            if not (isinstance(extra, dict) and extra.get(_SECRET_MARK)):
                continue
            default = info.default
            value = getattr(self, name)
            if _reveal(value) == _reveal(default):
                offending.append(name)
        if offending:
            prefix = self.model_config.get("env_prefix", "")
            names = ", ".join(f"{prefix}{n}".upper() for n in offending)
            raise ValueError(
                f"refusing to start in {self.env.value} with development default secrets: {names}"
            )
        return self


def _reveal(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class ServiceSettings(CortexSettings):
    """A service with its own PostgreSQL database."""

    database_url: SecretStr = secret_field(
        "postgresql+asyncpg://cortex:cortex@127.0.0.1:5432/cortex",
        "SQLAlchemy URL of this service's own database (postgresql+asyncpg://...)",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    outbox_poll_seconds: float = Field(default=1.0, gt=0, description="Relay poll period")
    outbox_relay_enabled: bool = Field(
        default=True, description="Relay outbox rows to JetStream from this process"
    )
    consumer_ack_wait_seconds: float = Field(default=30.0, gt=0)
    consumer_max_deliver: int = Field(default=5, ge=1, le=100)
    consumer_concurrency: int = Field(default=8, ge=1, le=256, description="Events in flight")
    rpc_concurrency: int = Field(
        default=32, ge=1, le=1024, description="Requests in flight per request/reply subject"
    )
