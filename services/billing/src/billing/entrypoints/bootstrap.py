"""The one place where the billing service is wired together."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from billing.adapters.counters import CallCounters, ensure_usage_stream, jetstream
from billing.adapters.stripe_api import StripeApi
from billing.domain.plans import plan_table
from billing.service_layer import handlers
from billing.settings import BillingSettings
from contracts import billing as msg
from contracts import identity, subjects
from cortex_runtime.database import UnitOfWork
from cortex_runtime.service import ServiceRuntime


class BillingRuntime(ServiceRuntime):
    async def ensure_streams(self) -> None:
        await super().ensure_streams()
        await ensure_usage_stream(jetstream(self.broker))  # the gateways' call counters


def bootstrap(settings: BillingSettings) -> ServiceRuntime:
    runtime = BillingRuntime(subjects.BILLING, settings)
    uow = runtime.uow
    cfg = handlers.Billing(
        plans=plan_table(settings.plan_overrides),
        prices=settings.stripe_prices(),
        hold=timedelta(seconds=settings.quota_hold_seconds),
        webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
        success_url=settings.checkout_success_url,
        cancel_url=settings.checkout_cancel_url,
        portal_return_url=settings.portal_return_url,
    )
    api_key = settings.stripe_api_key.get_secret_value()
    stripe = (
        StripeApi(api_key, settings.stripe_api_base, settings.stripe_timeout_seconds)
        if api_key
        else None
    )
    counters = CallCounters(runtime.broker)

    # --- the booking quota: a participant of the booking saga
    @runtime.rpc(msg.RESERVE_BOOKING_QUOTA)
    async def reserve_booking_quota(cmd: msg.ReserveBookingQuota) -> msg.QuotaReserved:
        return await handlers.reserve_booking_quota(cmd, uow, cfg)

    @runtime.rpc(msg.COMMIT_BOOKING_QUOTA)
    async def commit_booking_quota(cmd: msg.CommitBookingQuota) -> msg.QuotaSettled:
        return await handlers.commit_booking_quota(cmd, uow, cfg)

    @runtime.rpc(msg.RELEASE_BOOKING_QUOTA)
    async def release_booking_quota(cmd: msg.ReleaseBookingQuota) -> msg.QuotaSettled:
        return await handlers.release_booking_quota(cmd, uow, cfg)

    @runtime.background
    async def expire_quota_reservations() -> None:
        while True:
            if await handlers.expire_reservations(uow) == 0:
                await asyncio.sleep(settings.quota_sweep_seconds)

    # --- plans and usage
    @runtime.rpc(msg.GET_PLAN)
    async def get_plan(cmd: msg.GetPlan) -> msg.PlanReply:
        return await handlers.get_plan(cmd, uow, cfg, counters)

    @runtime.rpc(msg.SET_PLAN)
    async def set_plan(cmd: msg.SetPlan) -> msg.PlanSet:
        return await handlers.set_plan(cmd, uow, cfg)

    @runtime.rpc(msg.GET_DAILY_USAGE)
    async def get_daily_usage(cmd: msg.GetDailyUsage) -> msg.DailyUsage:
        return await handlers.get_daily_usage(cmd, uow, cfg, counters)

    # --- Stripe
    @runtime.rpc(msg.CREATE_CHECKOUT)
    async def create_checkout(cmd: msg.CreateCheckout) -> msg.CheckoutCreated:
        return await handlers.create_checkout(cmd, uow, cfg, stripe)

    @runtime.rpc(msg.CREATE_PORTAL)
    async def create_portal(cmd: msg.CreatePortal) -> msg.PortalCreated:
        return await handlers.create_portal(cmd, uow, cfg, stripe)

    @runtime.rpc(msg.RECEIVE_STRIPE_WEBHOOK)
    async def receive_stripe_webhook(cmd: msg.ReceiveStripeWebhook) -> msg.StripeWebhookHandled:
        return await handlers.receive_stripe_webhook(cmd, uow, cfg)

    # --- the projection of identity's settings that billing needs (user type, e-mail)
    @runtime.consumer(identity.TENANT_CREATED)
    async def on_tenant_created(event: identity.TenantCreated, uow: UnitOfWork) -> None:
        await handlers.project_tenant(event.settings, uow)

    @runtime.consumer(identity.SETTINGS_CHANGED)
    async def on_settings_changed(event: identity.SettingsChanged, uow: UnitOfWork) -> None:
        await handlers.project_tenant(event.settings, uow)

    @runtime.consumer(identity.TENANT_DELETED)
    async def on_tenant_deleted(event: identity.TenantDeleted, uow: UnitOfWork) -> None:
        await handlers.forget_tenant(event, event.deleted_tenant_id, event.settings_version, uow)

    @runtime.background
    async def cancel_deleted_tenants_subscriptions() -> None:
        while True:
            if await handlers.cancel_subscriptions(uow, cfg, stripe) == 0:
                await asyncio.sleep(2.0)

    return runtime
