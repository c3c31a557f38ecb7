from __future__ import annotations

from cortex_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class BookingSettings(ServiceSettings):
    """Settings of the booking service; variables are prefixed ``CORTEX_BOOKING_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_BOOKING_")
