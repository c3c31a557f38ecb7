from __future__ import annotations

from cortex_runtime.settings import CortexSettings, shared_field
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class GatewaySettings(CortexSettings):
    """Settings of the gateway; variables are prefixed ``CORTEX_GATEWAY_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_GATEWAY_")

    host: str = Field(default="127.0.0.1", description="Interface to listen on")
    port: int = shared_field(8000, "CORTEX_GATEWAY_PORT", "HTTP port")
    ready_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long /ready waits for each service's ping"
    )
