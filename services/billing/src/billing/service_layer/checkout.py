"""Stripe Checkout and the Customer Portal: where a tenant buys, changes or cancels a plan."""

from __future__ import annotations

from billing.adapters import tenants
from billing.service_layer.accounts import refuse_deleted
from billing.service_layer.deps import BillingDeps
from billing.service_layer.plans import tier_or_invalid
from contracts import billing as msg
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError, require_tenant


def _stripe_off() -> ServiceError:
    return ServiceError(
        ErrorKind.UNAVAILABLE,
        "stripe_not_configured",
        "Payments are not configured on this server (no Stripe key or price).",
    )


async def create_checkout(cmd: msg.CreateCheckout, deps: BillingDeps) -> msg.CheckoutCreated:
    tenant_id = require_tenant(cmd)
    tier = tier_or_invalid(cmd.plan_tier)
    if not deps.plans[tier].paid:
        raise ServiceError(
            ErrorKind.INVALID,
            "plan_not_purchasable",
            f"The {tier.value} plan is free: cancel the subscription in the billing portal "
            "to return to it.",
        )
    price = deps.prices.get(tier)
    stripe = deps.stripe
    if stripe is None or not price:
        raise _stripe_off()
    async with deps.uow() as uow:
        tenant = await tenants.lock(uow, tenant_id)
        refuse_deleted(tenant)
        if tenant.tier is tier:
            raise ServiceError(
                ErrorKind.INVALID, "already_on_plan", f"You are already on the {tier.value} plan."
            )
        customer_id = tenant.stripe_customer_id
        if not customer_id:  # once per tenant: the row stays locked while Stripe answers
            customer_id = await stripe.create_customer(
                tenant_id, tenant.email, tenant.display_name, f"cortex-customer-{tenant_id}"
            )
            await tenants.set_customer(uow, tenant_id, customer_id)
        await uow.commit()
    session = await stripe.create_checkout_session(
        customer_id=customer_id,
        price_id=price,
        tenant_id=tenant_id,
        tier=tier.value,
        success_url=deps.success_url,
        cancel_url=deps.cancel_url,
        idempotency_key=f"cortex-checkout-{tenant_id}-{tier.value}-{cmd.correlation_id}",
    )
    return msg.CheckoutCreated(**cmd.caused(), url=session.url, session_id=session.id)


async def create_portal(cmd: msg.CreatePortal, deps: BillingDeps) -> msg.PortalCreated:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        tenant = await tenants.get(uow, tenant_id)
    refuse_deleted(tenant)
    if tenant is None or not tenant.stripe_customer_id:
        raise ServiceError(
            ErrorKind.INVALID,
            "no_billing_account",
            "There is no billing account yet: choose a plan with POST /api/v1/billing/checkout "
            "first.",
        )
    if deps.stripe is None:
        raise _stripe_off()
    session = await deps.stripe.create_portal_session(
        customer_id=tenant.stripe_customer_id,
        return_url=deps.portal_return_url,
        idempotency_key=f"cortex-portal-{tenant_id}-{cmd.correlation_id}",
    )
    return msg.PortalCreated(**cmd.caused(), url=session.url)
