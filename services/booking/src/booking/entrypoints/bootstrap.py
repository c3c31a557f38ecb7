"""The one place where the booking service is wired together."""

from __future__ import annotations

from datetime import timedelta

from booking.adapters.free_busy_cache import FreeBusyCache, forget_on_calendar_changes
from booking.entrypoints.handlers import handlers
from booking.service_layer.deps import BookingDeps
from booking.service_layer.recovery import run_recovery
from booking.settings import BookingSettings
from contracts import subjects
from cortex_runtime.client import RpcClient
from cortex_runtime.service import ServiceRuntime


def build_deps(runtime: ServiceRuntime, settings: BookingSettings) -> BookingDeps:
    caching = settings.free_busy_cache_seconds > 0
    return BookingDeps(
        uow=runtime.uow,
        rpc=RpcClient(runtime.broker, settings.participant_timeout_seconds),
        hold=timedelta(seconds=settings.hold_seconds),
        pending_expiry=timedelta(hours=settings.pending_expiry_hours),
        participant_timeout=settings.participant_timeout_seconds,
        read=runtime.reader,
        free_busy_cache=FreeBusyCache(settings.free_busy_cache_seconds) if caching else None,
    )


def bootstrap(settings: BookingSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(subjects.BOOKING, settings)
    deps = build_deps(runtime, settings)
    runtime.register(handlers(settings), deps)

    @runtime.background
    async def recovery() -> None:
        await run_recovery(deps, settings.recovery_interval_seconds)

    cache = deps.free_busy_cache
    if cache is not None:

        @runtime.background
        async def forget_changed_calendars() -> None:
            await forget_on_calendar_changes(runtime.broker.connection, cache)

    return runtime
