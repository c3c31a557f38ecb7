from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from cortex_runtime.settings import ServiceSettings


class CalendarsSettings(ServiceSettings):
    """Settings of the calendars service; variables are prefixed ``CORTEX_CALENDARS_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_CALENDARS_")
