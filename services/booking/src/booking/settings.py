from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cortex_runtime.settings import ServiceSettings


class BookingSettings(ServiceSettings):
    """Settings of the booking service; variables are prefixed ``CORTEX_BOOKING_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_BOOKING_")

    hold_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a hold may stay unfinished before recovery ends it",
    )
    pending_expiry_hours: float = Field(
        default=48.0,
        gt=0,
        le=24 * 366,
        description="How long a pending booking waits for the owner (at most a year); its "
        "quota reservation is held as long, whatever billing's own hold",
    )
    participant_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long the saga waits for calendars and billing"
    )
    recovery_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often unfinished sagas and expired holds are swept"
    )
    free_busy_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long availability may reuse the calendars' free/busy answer of an "
        "owner's day; any calendars event for the owner drops it sooner. 0 turns it off",
    )
