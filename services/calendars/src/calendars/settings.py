from __future__ import annotations

from cortex_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class CalendarsSettings(ServiceSettings):
    """Settings of the calendars service; variables are prefixed ``CORTEX_CALENDARS_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_CALENDARS_")
