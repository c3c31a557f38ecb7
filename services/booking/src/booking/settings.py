from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from cortex_runtime.settings import ServiceSettings


class BookingSettings(ServiceSettings):
    """Settings of the booking service; variables are prefixed ``CORTEX_BOOKING_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_BOOKING_")
