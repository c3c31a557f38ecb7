"""The one place where the billing service is wired together."""

from __future__ import annotations

from billing.settings import BillingSettings
from contracts import subjects
from cortex_runtime.service import ServiceRuntime


def bootstrap(settings: BillingSettings) -> ServiceRuntime:
    return ServiceRuntime(subjects.BILLING, settings)
