"""The one place where the booking service is wired together."""

from __future__ import annotations

from booking.settings import BookingSettings
from contracts import subjects
from cortex_runtime.service import ServiceRuntime


def bootstrap(settings: BookingSettings) -> ServiceRuntime:
    return ServiceRuntime(subjects.BOOKING, settings)
