"""The one place where the calendars service is wired together."""

from __future__ import annotations

from calendars.settings import CalendarsSettings
from contracts import subjects
from cortex_runtime.service import ServiceRuntime


def bootstrap(settings: CalendarsSettings) -> ServiceRuntime:
    return ServiceRuntime(subjects.CALENDARS, settings)
