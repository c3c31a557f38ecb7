"""The one place where the billing service is wired together."""

from __future__ import annotations

from contracts import subjects
from cortex_runtime.service import ServiceRuntime

from billing.settings import BillingSettings


def bootstrap(settings: BillingSettings) -> ServiceRuntime:
    return ServiceRuntime(subjects.BILLING, settings)
