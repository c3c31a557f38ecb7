"""The one place where the billing service is wired together."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from billing.adapters.counters import CallCounters, ensure_usage_stream, jetstream
from billing.adapters.stripe_api import StripeApi
from billing.domain.plans import plan_table
from billing.entrypoints.handlers import HANDLERS
from billing.service_layer import quota, tenants
from billing.service_layer.deps import BillingDeps
from billing.settings import BillingSettings
from contracts import subjects
from cortex_runtime.service import ServiceRuntime


class BillingRuntime(ServiceRuntime):
    async def ensure_streams(self) -> None:
        await super().ensure_streams()
        await ensure_usage_stream(jetstream(self.broker))  # the gateways' call counters


def billing_deps(settings: BillingSettings, runtime: ServiceRuntime) -> BillingDeps:
    api_key = settings.stripe_api_key.get_secret_value()
    return BillingDeps(
        uow=runtime.uow,
        plans=plan_table(settings.plan_overrides),
        counters=CallCounters(runtime.broker),
        stripe=(
            StripeApi(api_key, settings.stripe_api_base, settings.stripe_timeout_seconds)
            if api_key
            else None
        ),
        prices=settings.stripe_prices(),
        hold=timedelta(seconds=settings.quota_hold_seconds),
        webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
        success_url=settings.checkout_success_url,
        cancel_url=settings.checkout_cancel_url,
        portal_return_url=settings.portal_return_url,
    )


def bootstrap(settings: BillingSettings) -> ServiceRuntime:
    runtime = BillingRuntime(subjects.BILLING, settings)
    deps = billing_deps(settings, runtime)
    runtime.register(HANDLERS, deps)

    @runtime.background
    async def expire_quota_reservations() -> None:
        while True:
            if await quota.expire_reservations(deps) == 0:
                await asyncio.sleep(settings.quota_sweep_seconds)

    @runtime.background
    async def cancel_deleted_tenants_subscriptions() -> None:
        while True:
            if await tenants.cancel_subscriptions(deps) == 0:
                await asyncio.sleep(2.0)

    return runtime
