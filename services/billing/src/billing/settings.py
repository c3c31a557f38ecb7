from __future__ import annotations

from cortex_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class BillingSettings(ServiceSettings):
    """Settings of the billing service; variables are prefixed ``CORTEX_BILLING_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_BILLING_")
