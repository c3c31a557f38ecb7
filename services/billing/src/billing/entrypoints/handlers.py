"""Every message billing answers or handles, and the handler of each.

RPC handlers are ``(cmd, deps)``, event handlers ``(event, deps, uow)`` in the inbox's unit
of work (:mod:`cortex_runtime.handlers`); ``deps`` is :class:`~billing.service_layer.deps.
BillingDeps`, built by the bootstrap, which serves this table.
"""

from __future__ import annotations

from typing import Final

from billing.service_layer import checkout, plans, quota, tenants, usage, webhooks
from contracts import billing as msg
from contracts import identity
from cortex_runtime.handlers import event, rpc

HANDLERS: Final = (
    # --- the booking quota: a participant of the booking saga
    rpc(msg.RESERVE_BOOKING_QUOTA, quota.reserve_booking_quota),
    rpc(msg.COMMIT_BOOKING_QUOTA, quota.commit_booking_quota),
    rpc(msg.RELEASE_BOOKING_QUOTA, quota.release_booking_quota),
    # --- plans and usage
    rpc(msg.GET_PLAN, plans.get_plan),
    rpc(msg.SET_PLAN, plans.set_plan),
    rpc(msg.GET_DAILY_USAGE, usage.get_daily_usage),
    # --- Stripe
    rpc(msg.CREATE_CHECKOUT, checkout.create_checkout),
    rpc(msg.CREATE_PORTAL, checkout.create_portal),
    rpc(msg.RECEIVE_STRIPE_WEBHOOK, webhooks.receive_stripe_webhook),
    # --- the projection of identity's settings that billing needs (user type, e-mail)
    event(identity.TENANT_CREATED, tenants.on_tenant_created),
    event(identity.SETTINGS_CHANGED, tenants.on_settings_changed),
    event(identity.TENANT_DELETED, tenants.on_tenant_deleted),
)
