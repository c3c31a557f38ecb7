"""The tenants billing knows from identity: the projection of their settings (user type,
e-mail and name), their deletion, and the cancellation of a deleted tenant's subscription."""

from __future__ import annotations

import logging
from datetime import timedelta

from billing.adapters import tenants
from billing.domain.plans import FREE_TIER
from billing.domain.stripe_events import LIVE_SUBSCRIPTION
from billing.service_layer.deps import BillingDeps
from billing.service_layer.plans import move_plan
from contracts import billing as msg
from contracts import identity
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

CANCEL_RETRY_MAX = timedelta(hours=1)


async def on_tenant_created(
    event: identity.TenantCreated, deps: BillingDeps, uow: UnitOfWork
) -> None:
    await tenants.project_settings(uow, event.settings)


async def on_settings_changed(
    event: identity.SettingsChanged, deps: BillingDeps, uow: UnitOfWork
) -> None:
    await tenants.project_settings(uow, event.settings)


async def on_tenant_deleted(
    event: identity.TenantDeleted, deps: BillingDeps, uow: UnitOfWork
) -> None:
    """The tenant was deleted (identity's tenant_deleted). What billing ends:

    * its Stripe subscription, cancelled at once (no proration, no final invoice) by the
      cancellation loop, retried until Stripe confirms;
    * new work: quota reservations, checkout, portal and plan changes are refused;
    * the settings projection: e-mail and name are erased, later settings events ignored.

    What stays: the tenant's row (tier, Stripe ids, deletion time) and its committed
    bookings, the operator's billing records; a saga already past its pivot still commits.
    """
    tenant_id = event.deleted_tenant_id
    tenant = await tenants.lock(uow, tenant_id)
    if tenant.deleted_at is not None:
        return
    subscription = tenant.stripe_subscription_id
    live = bool(subscription) and (tenant.subscription_status or "active") in LIVE_SUBSCRIPTION
    await tenants.mark_deleted(
        uow,
        tenant_id,
        max(tenant.settings_version, event.settings_version),
        subscription if live else None,
    )
    log.info("tenant deleted", extra={"tenant_id": tenant_id, "cancels_subscription": live})


async def cancel_subscriptions(deps: BillingDeps, batch: int = 10) -> int:
    """One pass of the cancellation loop: cancel due subscriptions of deleted tenants at
    Stripe (each claimed with SKIP LOCKED, so replicas share them); a failure is retried
    after a growing delay (up to an hour). Returns how many were tried."""
    stripe = deps.stripe
    if stripe is None:
        return 0
    tried = 0
    for _ in range(batch):
        async with deps.uow() as uow:
            tenant = await tenants.claim_due_cancellation(uow)
            if tenant is None or tenant.cancel_subscription_id is None:
                return tried
            tried += 1
            subscription = tenant.cancel_subscription_id
            try:
                await stripe.cancel_subscription(
                    subscription, f"cortex-cancel-{tenant.tenant_id}-{subscription}"
                )
            except ServiceError as exc:
                attempts = tenant.cancel_attempts + 1
                delay = min(timedelta(seconds=2**attempts), CANCEL_RETRY_MAX)
                await tenants.postpone_cancellation(
                    uow, tenant.tenant_id, attempts, delay, exc.reply.message
                )
                await uow.commit()
                log.warning(
                    "subscription cancellation will be retried",
                    extra={"tenant_id": tenant.tenant_id, "attempts": attempts},
                )
                continue
            await tenants.cancellation_done(
                uow, tenant.tenant_id, was_current=tenant.stripe_subscription_id == subscription
            )
            cause = msg.GetPlan(tenant_id=tenant.tenant_id)
            await move_plan(uow, deps, cause, tenant, FREE_TIER, "stripe", "canceled")
            await uow.commit()
            log.info(
                "deleted tenant's subscription cancelled",
                extra={"tenant_id": tenant.tenant_id, "subscription_id": subscription},
            )
    return tried
