"""The one place where the calendars service is wired together."""

from __future__ import annotations

import functools
from datetime import timedelta

from calendars.adapters.factory import build_providers
from calendars.adapters.secrets import SecretBox
from calendars.entrypoints.handlers import HANDLERS
from calendars.service_layer import booking_events, sync
from calendars.service_layer.deps import CalendarsDeps
from calendars.settings import CalendarsSettings
from contracts import subjects
from cortex_runtime.service import ServiceRuntime


def bootstrap(settings: CalendarsSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(subjects.CALENDARS, settings)
    box = SecretBox(settings.encryption_keys.get_secret_value())
    deps = CalendarsDeps(
        uow=runtime.uow,
        read=runtime.reader,
        box=box,
        providers=build_providers(settings, box, runtime.uow),
        horizon_days=settings.sync_horizon_days,
        sync_interval=timedelta(seconds=settings.sync_interval_seconds),
    )
    runtime.register(HANDLERS, deps)
    runtime.background(functools.partial(sync.scheduled_sync, deps))
    runtime.background(functools.partial(booking_events.purge_tombstones_hourly, deps))
    return runtime
