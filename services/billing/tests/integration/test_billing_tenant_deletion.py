"""A deleted tenant (identity's tenant_deleted): billing cancels its Stripe subscription at
once and refuses new work for it; a saga already past its pivot still commits."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from billing_harness import (
    PRICES,
    STRIPE_KEY,
    StartBilling,
    StripeServers,
    signed_webhook,
)

from contracts import billing as msg
from contracts import identity
from cortex_dev.fakes.stripe import event
from cortex_dev.pytest_plugin import eventually, publish_events, query
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning"),
]


def settings(tenant: str, version: int, email: str) -> identity.TenantSettings:
    return identity.TenantSettings(
        tenant_id=tenant,
        email=email,
        display_name="Gone Soon",
        slug=None,
        open_scheduling=False,
        user_type=identity.UserType.INDIVIDUAL,
        timezone="UTC",
        working_hours={},
        booking_rules=identity.BookingRules(),
        updated_at=datetime.now(UTC) - timedelta(minutes=version),
        version=version,
    )


async def test_deleting_a_tenant_cancels_its_subscription_and_refuses_new_work(
    start_billing: StartBilling,
    rpc: RpcClient,
    billing_db: str,
    stripe_servers: StripeServers,
    nats_url: str,
) -> None:
    start_billing()
    tenant = f"tn_{uuid.uuid4().hex[:20]}"
    email = f"{tenant}@example.com"
    await publish_events(
        nats_url,
        (
            identity.TENANT_CREATED,
            identity.TenantCreated(tenant_id=tenant, settings=settings(tenant, 1, email)),
        ),
    )

    # an active growth subscription made by localstripe, announced by a signed webhook
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_servers.localstripe_url})
    customer = client.v1.customers.create({"email": email, "metadata": {"tenant_id": tenant}})
    card = client.v1.tokens.create(
        {"card": {"number": "4242424242424242", "exp_month": "12", "exp_year": "2035",
                  "cvc": "123"}}
    )  # fmt: skip
    client.v1.customers.payment_sources.create(customer.id, {"source": card.id})
    product = client.v1.products.create({"name": f"Cortex growth {tenant}"})
    price = f"{PRICES['growth']}_{tenant}"
    client.v1.plans.create(
        {"id": price, "product": product.id, "amount": 9900, "currency": "usd",
         "interval": "month"}
    )  # fmt: skip
    subscription = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": price}],
         "metadata": {"tenant_id": tenant, "plan_tier": "growth"}}
    )  # fmt: skip
    sub = json.loads(json.dumps(subscription.to_dict(), default=str))
    handled = await signed_webhook(rpc, event("customer.subscription.created", sub))
    assert handled.status == "processed"
    assert (await rpc.call(msg.GET_PLAN, msg.GetPlan(tenant_id=tenant))).tier is msg.PlanTier.GROWTH

    # a saga that reserved before the deletion and passes its pivot after it
    await rpc.call(
        msg.RESERVE_BOOKING_QUOTA, msg.ReserveBookingQuota(tenant_id=tenant, booking_id="bk_pre")
    )

    deleted = identity.TenantDeleted(tenant_id=tenant, deleted_tenant_id=tenant, settings_version=5)
    stale = identity.SettingsChanged(
        tenant_id=tenant, settings=settings(tenant, 4, "revived@example.com"), changed=["email"]
    )
    await publish_events(
        nats_url, (identity.TENANT_DELETED, deleted), (identity.SETTINGS_CHANGED, stale)
    )

    async def cancelled() -> bool:
        return bool(client.v1.subscriptions.retrieve(subscription.id).status == "canceled")

    await eventually(cancelled, "the subscription is cancelled at Stripe")

    async def settled() -> list[object]:
        rows = await query(
            billing_db,
            "SELECT * FROM tenants WHERE tenant_id = $1 AND cancel_subscription_id IS NULL "
            "AND subscription_status = 'canceled'",
            tenant,
        )
        return list(rows)

    [row] = await eventually(settled, "billing recorded the cancellation")
    assert row["deleted_at"] is not None and row["stripe_subscription_id"] is None
    assert (row["tier"], row["email"], row["display_name"]) == ("starter", "", "")
    await eventually(
        lambda: _handled(billing_db, [deleted.message_id, stale.message_id]), "both events handled"
    )
    [row] = await query(billing_db, "SELECT email FROM tenants WHERE tenant_id = $1", tenant)
    assert row["email"] == ""  # the stale settings event revived nothing

    # nothing new for a deleted tenant
    for rpc_spec, request in (
        (msg.RESERVE_BOOKING_QUOTA, msg.ReserveBookingQuota(tenant_id=tenant, booking_id="bk_new")),
        (msg.CREATE_CHECKOUT, msg.CreateCheckout(tenant_id=tenant, plan_tier="pro")),
        (msg.CREATE_PORTAL, msg.CreatePortal(tenant_id=tenant)),
        (msg.SET_PLAN, msg.SetPlan(tenant_id=tenant, tier="scale")),
    ):
        with pytest.raises(ServiceError) as refused:
            await rpc.call(rpc_spec, request)  # type: ignore[arg-type]
        assert refused.value.code == "tenant_deleted", rpc_spec.subject
    # the saga past its pivot commits what it reserved
    committed = await rpc.call(
        msg.COMMIT_BOOKING_QUOTA, msg.CommitBookingQuota(tenant_id=tenant, booking_id="bk_pre")
    )
    assert committed.state == "committed"

    # Stripe's own announcements afterwards move no plan; a subscription that appears after
    # the deletion (a checkout paid just before it) is cancelled too
    late = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": price}],
         "metadata": {"tenant_id": tenant, "plan_tier": "growth"}}
    )  # fmt: skip
    late_sub = json.loads(json.dumps(late.to_dict(), default=str))
    created = int(time.time()) + 5
    await signed_webhook(rpc, event("customer.subscription.created", late_sub, created=created))

    async def late_cancelled() -> bool:
        return bool(client.v1.subscriptions.retrieve(late.id).status == "canceled")

    await eventually(late_cancelled, "the late subscription is cancelled at Stripe")
    plan = await rpc.call(msg.GET_PLAN, msg.GetPlan(tenant_id=tenant))
    assert plan.tier is msg.PlanTier.STARTER


async def _handled(db: str, ids: list[str]) -> bool:
    rows = await query(db, "SELECT count(*) AS n FROM inbox WHERE message_id = ANY($1)", ids)
    return bool(rows[0]["n"] == len(ids))
