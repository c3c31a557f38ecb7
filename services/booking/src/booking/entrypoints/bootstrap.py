"""The one place where the booking service is wired together."""

from __future__ import annotations

from contracts import subjects
from cortex_runtime.service import ServiceRuntime

from booking.settings import BookingSettings


def bootstrap(settings: BookingSettings) -> ServiceRuntime:
    return ServiceRuntime(subjects.BOOKING, settings)
