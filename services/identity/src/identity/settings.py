from __future__ import annotations

from cortex_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class IdentitySettings(ServiceSettings):
    """Settings of the identity service; variables are prefixed ``CORTEX_IDENTITY_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_IDENTITY_")
