from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from cortex_runtime.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    """Settings of the billing service; variables are prefixed ``CORTEX_BILLING_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_BILLING_")
