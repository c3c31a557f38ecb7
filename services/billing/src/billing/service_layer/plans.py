"""Plans: reading a tenant's plan and usage, the operator's plan change, and the one way
a tenant moves to another tier (the operator's, Stripe's and a deletion's alike)."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Literal

from billing.adapters import quota, tenants
from billing.adapters.tenants import Tenant
from billing.domain.plans import UnknownTier, parse_tier
from billing.service_layer.accounts import plan_of, refuse_deleted
from billing.service_layer.deps import BillingDeps
from contracts import billing as msg
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError, require_tenant

log = logging.getLogger(__name__)


async def move_plan(
    uow: UnitOfWork,
    deps: BillingDeps,
    cause: Message,
    tenant: Tenant,
    tier: msg.PlanTier,
    source: Literal["stripe", "operator"],
    subscription_status: str | None,
) -> bool:
    """Put the (locked) tenant on ``tier``; emits ``plan_changed`` when the tier changes."""
    previous = tenant.tier
    if previous is tier:
        return False
    await tenants.set_tier(uow, tenant.tenant_id, tier)
    limits = deps.plans[tier].limits(tenant.user_type)
    await uow.add_event(
        msg.PLAN_CHANGED.subject,
        msg.PlanChanged(
            **cause.caused(tenant_id=tenant.tenant_id),
            tier=tier,
            previous_tier=previous,
            source=source,
            calls_daily_limit=limits.calls_daily_limit,
            bookings_limit=limits.bookings_limit,
            calendars_limit=limits.calendars_limit,
            subscription_status=subscription_status,
        ),
    )
    log.info(
        "plan changed",
        extra={"tenant_id": tenant.tenant_id, "tier": tier.value, "previous": previous.value},
    )
    return True


def tier_or_invalid(value: str) -> msg.PlanTier:
    try:
        return parse_tier(value)
    except UnknownTier as exc:
        raise ServiceError(ErrorKind.INVALID, "unknown_plan", str(exc)) from exc


async def set_plan(cmd: msg.SetPlan, deps: BillingDeps) -> msg.PlanSet:
    """The operator's plan change (``cortex plan set``): the same path as Stripe's."""
    tenant_id = require_tenant(cmd)
    tier = tier_or_invalid(cmd.tier)
    async with deps.uow() as uow:
        tenant = await tenants.lock(uow, tenant_id)
        refuse_deleted(tenant)
        changed = await move_plan(
            uow, deps, cmd, tenant, tier, "operator", tenant.subscription_status
        )
        await uow.commit()
    return msg.PlanSet(tier=tier, previous_tier=tenant.tier, changed=changed)


async def get_plan(cmd: msg.GetPlan, deps: BillingDeps) -> msg.PlanReply:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        tenant = await tenants.get(uow, tenant_id)
        used = await quota.month_used(uow, tenant_id, deps.month())
    plan, user_type = plan_of(deps, tenant)
    today = deps.clock().astimezone(UTC).date()
    calls = await deps.counters.calls(tenant_id, [today])
    return msg.PlanReply(
        **cmd.caused(),
        tier=plan.tier,
        user_type=user_type,
        calls_daily_limit=plan.calls_per_day,
        bookings_limit=plan.bookings_per_month(user_type),
        calendars_limit=plan.calendars,
        bookings_used=used,
        calls_today=calls[today],
        subscription_status=tenant.subscription_status if tenant is not None else None,
    )
