"""Stripe's webhooks: each event once (the inbox of ``stripe_webhook``), applied to the
tenant it is about; an event older than the last one applied changes nothing."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal

from billing.adapters import tenants
from billing.adapters.stripe_webhooks import verify
from billing.adapters.tenants import SubscriptionUpdate, Tenant
from billing.domain.plans import FREE_TIER
from billing.domain.stripe_events import (
    LIVE_SUBSCRIPTION,
    InvalidPayload,
    InvalidSignature,
    PlanMove,
    StripeEvent,
    plan_move,
)
from billing.service_layer.deps import BillingDeps
from billing.service_layer.plans import move_plan
from contracts import billing as msg
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

STRIPE_CONSUMER = "stripe_webhook"


async def receive_stripe_webhook(
    cmd: msg.ReceiveStripeWebhook, deps: BillingDeps
) -> msg.StripeWebhookHandled:
    try:
        event = verify(cmd.payload, cmd.signature, deps.webhook_secret, deps.clock())
    except InvalidSignature as exc:
        raise ServiceError(ErrorKind.INVALID, "invalid_signature", str(exc)) from exc
    except InvalidPayload as exc:
        raise ServiceError(ErrorKind.INVALID, "invalid_payload", str(exc)) from exc

    def handled(
        status: Literal["processed", "duplicate", "ignored"], tenant_id: str | None = None
    ) -> msg.StripeWebhookHandled:
        return msg.StripeWebhookHandled(
            **cmd.caused(),
            status=status,
            event_type=event.type,
            affected_tenant_id=tenant_id,
        )

    async with deps.uow() as uow:
        if not await uow.first_delivery(STRIPE_CONSUMER, event.id):
            return handled("duplicate")
        move = plan_move(event, deps.tier_of_price())
        tenant = await _tenant_for(uow, move) if move is not None else None
        if move is None or tenant is None:
            await uow.commit()  # remembered as seen, so a re-send is a duplicate too
            return handled("ignored")
        await _apply_move(uow, deps, cmd, event, tenant, move)
        await uow.commit()
    return handled("processed", tenant.tenant_id)


async def _tenant_for(uow: UnitOfWork, move: PlanMove) -> Tenant | None:
    """The tenant an event is about, locked: by our metadata, else by its Stripe customer."""
    if move.tenant_hint:
        return await tenants.lock(uow, move.tenant_hint)
    if not move.customer_id:
        return None
    return await tenants.lock_by_customer(uow, move.customer_id)


async def _apply_move(
    uow: UnitOfWork,
    deps: BillingDeps,
    cmd: msg.ReceiveStripeWebhook,
    event: StripeEvent,
    tenant: Tenant,
    move: PlanMove,
) -> None:
    if tenant.stripe_event_at is not None and event.created < tenant.stripe_event_at:
        log.info(
            "older Stripe event skipped",
            extra={"event_id": event.id, "tenant_id": tenant.tenant_id},
        )
        return
    if tenant.deleted_at is not None:
        await _after_deletion(uow, event, tenant, move)
        return
    current = tenant.stripe_subscription_id
    other = bool(current and move.subscription_id and move.subscription_id != current)
    if other and (move.ends_subscription or move.tier is FREE_TIER):
        # the end of a subscription the tenant has replaced: its current one stands
        log.info("event about a replaced subscription", extra={"event_id": event.id})
        return
    period = (move.period_start, move.period_end) if move.period_start and move.period_end else None
    update = SubscriptionUpdate(
        event_at=event.created,
        customer_id=move.customer_id if not tenant.stripe_customer_id else None,
        subscription_id=move.subscription_id,
        subscription_status=move.subscription_status,
        ends_subscription=move.ends_subscription,
        period=period,
    )
    await tenants.record_stripe_event(uow, tenant.tenant_id, update)
    if move.tier is not None:
        status = move.subscription_status or None
        await move_plan(uow, deps, cmd, tenant, move.tier, "stripe", status)


async def _after_deletion(
    uow: UnitOfWork, event: StripeEvent, tenant: Tenant, move: PlanMove
) -> None:
    """A Stripe event about a deleted tenant moves no plan; a subscription it still has
    (e.g. a checkout paid just before the deletion, announced after it) is cancelled."""
    update = SubscriptionUpdate(
        event_at=event.created, subscription_status=move.subscription_status
    )
    if move.ends_subscription:
        if move.subscription_id == tenant.stripe_subscription_id:
            update = replace(update, ends_subscription=True)
    elif move.subscription_id and (move.subscription_status or "active") in LIVE_SUBSCRIPTION:
        update = replace(update, subscription_id=move.subscription_id, cancel_now=True)
    await tenants.record_stripe_event(uow, tenant.tenant_id, update)
