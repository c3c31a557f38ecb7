"""The billing service as processes against real NATS and PostgreSQL; Stripe through the
real SDK against localstripe and the local fake of the endpoints localstripe lacks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from billing_harness import PRICES, STRIPE_KEY, WEBHOOK_SECRET, StartBilling, StripeServers
from faststream.nats import NatsBroker

from contracts import billing as msg
from contracts import identity
from contracts.rpc import ErrorKind
from cortex_dev.fakes.stripe import event
from cortex_dev.pytest_plugin import eventually, publish_events, query
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

pytestmark = [
    pytest.mark.integration,
    # localstripe registers plain functions as aiohttp handlers
    pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning"),
]


def new_tenant() -> str:
    return f"tn_{uuid.uuid4().hex[:20]}"


async def reserve(rpc: RpcClient, tenant: str, booking: str) -> msg.QuotaReserved:
    return await rpc.call(
        msg.RESERVE_BOOKING_QUOTA, msg.ReserveBookingQuota(tenant_id=tenant, booking_id=booking)
    )


async def plan_of(rpc: RpcClient, tenant: str) -> msg.PlanReply:
    return await rpc.call(msg.GET_PLAN, msg.GetPlan(tenant_id=tenant))


async def month_used(db: str, tenant: str) -> int:
    rows = await query(
        db, "SELECT coalesce(sum(used), 0) AS n FROM quota_months WHERE tenant_id = $1", tenant
    )
    return int(rows[0]["n"])


async def plan_changes(db: str, tenant: str) -> list[dict[str, Any]]:
    rows = await query(
        db,
        "SELECT payload FROM outbox WHERE subject = $1 ORDER BY created_at",
        msg.PLAN_CHANGED.subject,
    )
    events = [json.loads(bytes(r["payload"])) for r in rows]
    return [e for e in events if e["tenant_id"] == tenant]


# --- the booking quota -----------------------------------------------------------------------


async def test_fifty_concurrent_reservations_against_a_limit_of_twenty(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str
) -> None:
    start_billing(replicas=2)
    tenant = new_tenant()  # starter, individual: 20 bookings a month
    results = await asyncio.gather(
        *(reserve(rpc, tenant, f"bk_{tenant}_{i}") for i in range(50)), return_exceptions=True
    )
    granted = [r for r in results if isinstance(r, msg.QuotaReserved)]
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(granted) == 20 and len(refused) == 30, results
    assert sorted(r.used for r in granted) == list(range(1, 21))
    assert all(r.limit == 20 for r in granted)
    for error in refused:
        assert (error.kind, error.code) == (ErrorKind.PAYMENT_REQUIRED, "booking_limit_reached")
        assert error.reply.message == (
            "This month's booking limit is reached: the starter plan allows 20 bookings per "
            "month. Upgrade the plan or wait for the next month."
        )
    assert await month_used(billing_db, tenant) == 20
    rows = await query(
        billing_db, "SELECT state FROM quota_reservations WHERE tenant_id = $1", tenant
    )
    assert [r["state"] for r in rows] == ["reserved"] * 20
    assert (await plan_of(rpc, tenant)).bookings_used == 20


async def test_reservations_are_idempotent_by_booking_id(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str
) -> None:
    start_billing()
    tenant = new_tenant()
    again = await asyncio.gather(*(reserve(rpc, tenant, "bk_same") for _ in range(5)))
    assert {(r.booking_id, r.used, r.limit) for r in again} == {("bk_same", 1, 20)}
    assert await month_used(billing_db, tenant) == 1

    for _ in range(2):
        settled = await rpc.call(
            msg.COMMIT_BOOKING_QUOTA, msg.CommitBookingQuota(tenant_id=tenant, booking_id="bk_same")
        )
        assert settled.state == "committed"
    assert (await reserve(rpc, tenant, "bk_same")).used == 1  # a late retry of the reserve
    assert await month_used(billing_db, tenant) == 1

    # cancelled before the meeting: booking releases the committed unit
    for _ in range(2):
        released = await rpc.call(
            msg.RELEASE_BOOKING_QUOTA,
            msg.ReleaseBookingQuota(tenant_id=tenant, booking_id="bk_same"),
        )
        assert released.state == "released"
    assert await month_used(billing_db, tenant) == 0
    with pytest.raises(ServiceError) as late:
        await reserve(rpc, tenant, "bk_same")
    assert (late.value.kind, late.value.code) == (ErrorKind.CONFLICT, "quota_released")

    # a release that overtakes its reservation: the reservation can no longer count
    unknown = await rpc.call(
        msg.RELEASE_BOOKING_QUOTA, msg.ReleaseBookingQuota(tenant_id=tenant, booking_id="bk_never")
    )
    assert unknown.state == "unknown"
    with pytest.raises(ServiceError) as overtaken:
        await reserve(rpc, tenant, "bk_never")
    assert overtaken.value.code == "quota_released"
    assert await month_used(billing_db, tenant) == 0

    with pytest.raises(ServiceError) as missing:
        await rpc.call(
            msg.COMMIT_BOOKING_QUOTA, msg.CommitBookingQuota(tenant_id=tenant, booking_id="bk_nope")
        )
    assert (missing.value.kind, missing.value.code) == (
        ErrorKind.NOT_FOUND,
        "reservation_not_found",
    )

    await reserve(rpc, tenant, "bk_mine")
    with pytest.raises(ServiceError) as theirs:
        await reserve(rpc, new_tenant(), "bk_mine")
    assert theirs.value.code == "booking_id_taken"
    with pytest.raises(ServiceError) as no_tenant:
        await rpc.call(msg.RESERVE_BOOKING_QUOTA, msg.ReserveBookingQuota(booking_id="bk_x"))
    assert (no_tenant.value.kind, no_tenant.value.code) == (
        ErrorKind.UNAUTHORIZED,
        "tenant_required",
    )


async def test_reservations_neither_committed_nor_released_expire(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str
) -> None:
    start_billing(CORTEX_BILLING_QUOTA_HOLD_SECONDS="1.5", CORTEX_BILLING_QUOTA_SWEEP_SECONDS="0.2")
    tenant = new_tenant()
    for i in range(20):
        await reserve(rpc, tenant, f"bk_exp_{i}")
    await rpc.call(
        msg.COMMIT_BOOKING_QUOTA, msg.CommitBookingQuota(tenant_id=tenant, booking_id="bk_exp_0")
    )
    with pytest.raises(ServiceError) as full:
        await reserve(rpc, tenant, "bk_exp_20")
    assert full.value.code == "booking_limit_reached"

    async def swept() -> bool:
        return await month_used(billing_db, tenant) == 1

    await eventually(swept, "the sweep gave back the expired reservations", timeout=10)
    rows = await query(
        billing_db,
        "SELECT state, count(*) AS n FROM quota_reservations WHERE tenant_id = $1 GROUP BY state",
        tenant,
    )
    assert {r["state"]: r["n"] for r in rows} == {"committed": 1, "expired": 19}
    assert (await plan_of(rpc, tenant)).bookings_used == 1
    assert (await reserve(rpc, tenant, "bk_exp_20")).used == 2
    # a commit arriving after its reservation expired counts it again, if the limit allows
    late = await rpc.call(
        msg.COMMIT_BOOKING_QUOTA, msg.CommitBookingQuota(tenant_id=tenant, booking_id="bk_exp_5")
    )
    assert late.state == "committed" and await month_used(billing_db, tenant) == 3


async def test_a_full_month_frees_its_overdue_reservations_at_once(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str
) -> None:
    # no sweep during the test: the reservation itself expires overdue ones of the tenant
    start_billing(CORTEX_BILLING_QUOTA_HOLD_SECONDS="1", CORTEX_BILLING_QUOTA_SWEEP_SECONDS="3600")
    await asyncio.sleep(0.5)  # the sweep's first pass has run
    tenant = new_tenant()
    for i in range(20):
        await reserve(rpc, tenant, f"bk_inline_{i}")
    await asyncio.sleep(1.2)
    assert await month_used(billing_db, tenant) == 20
    assert (await reserve(rpc, tenant, "bk_inline_20")).used == 1


async def test_the_developer_user_type_comes_from_identity_events(
    start_billing: StartBilling, rpc: RpcClient, nats_url: str, billing_db: str
) -> None:
    start_billing()
    tenant = new_tenant()
    now = datetime.now(UTC)

    def settings(user_type: str, at: datetime) -> identity.TenantSettings:
        return identity.TenantSettings(
            tenant_id=tenant,
            email=f"{tenant}@example.com",
            display_name="Dev Eloper",
            slug=None,
            open_scheduling=False,
            user_type=identity.UserType(user_type),
            timezone="UTC",
            working_hours={},
            booking_rules=identity.BookingRules(),
            updated_at=at,
        )

    created = identity.TenantCreated(tenant_id=tenant, settings=settings("developer", now))
    older = identity.SettingsChanged(
        tenant_id=tenant,
        settings=settings("individual", now - timedelta(minutes=1)),
        changed=["user_type"],
    )
    await publish_events(
        nats_url, (identity.TENANT_CREATED, created), (identity.SETTINGS_CHANGED, older)
    )

    async def projected() -> bool:
        rows = await query(billing_db, "SELECT user_type FROM tenants WHERE tenant_id = $1", tenant)
        return bool(rows) and rows[0]["user_type"] == "developer"

    await eventually(projected, "billing projected the tenant", timeout=10)

    async def both_handled() -> bool:
        rows = await query(
            billing_db,
            "SELECT count(*) AS n FROM inbox WHERE message_id = ANY($1)",
            [created.message_id, older.message_id],
        )
        return rows[0]["n"] == 2

    await eventually(both_handled, "both events handled", timeout=10)
    plan = await plan_of(rpc, tenant)
    assert (plan.user_type, plan.bookings_limit, plan.tier) == (
        identity.UserType.DEVELOPER,
        100,
        msg.PlanTier.STARTER,
    )
    rows = await query(
        billing_db, "SELECT email, display_name FROM tenants WHERE tenant_id = $1", tenant
    )
    assert (rows[0]["email"], rows[0]["display_name"]) == (f"{tenant}@example.com", "Dev Eloper")


@asynccontextmanager
async def connected_broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    broker = build_broker(nats_url, "billing-tests-publisher")
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.stop()


# --- plans ---------------------------------------------------------------------------------------


async def test_the_operator_moves_a_plan_and_it_is_announced_once(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str
) -> None:
    start_billing()
    tenant = new_tenant()
    moved = await rpc.call(msg.SET_PLAN, msg.SetPlan(tenant_id=tenant, tier="growth"))
    assert (moved.tier, moved.previous_tier, moved.changed) == (
        msg.PlanTier.GROWTH,
        msg.PlanTier.STARTER,
        True,
    )
    same = await rpc.call(msg.SET_PLAN, msg.SetPlan(tenant_id=tenant, tier="growth"))
    assert not same.changed
    [change] = await plan_changes(billing_db, tenant)
    assert {k: change[k] for k in ("tier", "previous_tier", "source", "calls_daily_limit", "bookings_limit")} == {
        "tier": "growth", "previous_tier": "starter", "source": "operator",
        "calls_daily_limit": 10_000, "bookings_limit": 1_000,
    }  # fmt: skip
    plan = await plan_of(rpc, tenant)
    assert (plan.tier, plan.calls_daily_limit, plan.calendars_limit) == (
        msg.PlanTier.GROWTH,
        10_000,
        20,
    )
    with pytest.raises(ServiceError) as unknown:
        await rpc.call(msg.SET_PLAN, msg.SetPlan(tenant_id=tenant, tier="platinum"))
    assert (unknown.value.kind, unknown.value.code) == (ErrorKind.INVALID, "unknown_plan")


async def test_plan_overrides_from_the_settings(
    start_billing: StartBilling, rpc: RpcClient
) -> None:
    start_billing(
        CORTEX_BILLING_PLAN_OVERRIDES='{"starter": {"calls_per_day": 7, "calendars": null}}'
    )
    plan = await plan_of(rpc, new_tenant())
    assert (plan.calls_daily_limit, plan.calendars_limit, plan.bookings_limit) == (7, None, 20)


# --- Stripe webhooks ----------------------------------------------------------------------------


async def webhook(
    rpc: RpcClient, payload: dict[str, Any] | str, *, secret: str = WEBHOOK_SECRET, at: int | None = None,
    signature: str | None = None,
) -> msg.StripeWebhookHandled:  # fmt: skip
    body = payload if isinstance(payload, str) else json.dumps(payload)
    header = signature or stripe.WebhookSignature.generate_signature_header(body, secret, at)
    return await rpc.call(
        msg.RECEIVE_STRIPE_WEBHOOK, msg.ReceiveStripeWebhook(payload=body, signature=header)
    )


def completed_checkout(tenant: str, tier: str, customer: str = "cus_x") -> dict[str, Any]:
    return event(
        "checkout.session.completed",
        {
            "id": f"cs_test_{uuid.uuid4().hex}",
            "object": "checkout.session",
            "mode": "subscription",
            "status": "complete",
            "payment_status": "paid",
            "customer": customer,
            "subscription": f"sub_{uuid.uuid4().hex[:14]}",
            "client_reference_id": tenant,
            "metadata": {"tenant_id": tenant, "plan_tier": tier},
        },
    )


async def test_a_signed_webhook_moves_the_plan_once(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str
) -> None:
    start_billing()
    tenant = new_tenant()
    delivery = completed_checkout(tenant, "pro", customer=f"cus_{tenant}")
    first = await webhook(rpc, delivery)
    assert (first.status, first.event_type, first.affected_tenant_id) == (
        "processed",
        "checkout.session.completed",
        tenant,
    )
    # Stripe retries (the same event id, signed again later): one effect
    again = await webhook(rpc, delivery, at=int(time.time()) + 5)
    assert again.status == "duplicate"
    plan = await plan_of(rpc, tenant)
    assert (plan.tier, plan.calls_daily_limit, plan.subscription_status) == (
        msg.PlanTier.PRO,
        10_000,
        "active",
    )
    assert [c["tier"] for c in await plan_changes(billing_db, tenant)] == ["pro"]
    [row] = await query(billing_db, "SELECT * FROM tenants WHERE tenant_id = $1", tenant)
    assert row["stripe_customer_id"] == f"cus_{tenant}"
    assert row["stripe_subscription_id"] == delivery["data"]["object"]["subscription"]

    ignored = await webhook(
        rpc, event("customer.created", {"id": f"cus_{tenant}", "object": "customer"})
    )
    assert (ignored.status, ignored.event_type) == ("ignored", "customer.created")


async def test_bad_signatures_are_refused_and_change_nothing(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str
) -> None:
    start_billing()
    tenant = new_tenant()
    delivery = completed_checkout(tenant, "scale")
    body = json.dumps(delivery)
    now = int(time.time())
    tampered_body = body.replace('"scale"', '"growth"')
    attempts = {
        "tampered": dict(payload=tampered_body, signature=stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)),
        "wrong secret": dict(payload=body, secret="whsec_not_the_one"),
        "old": dict(payload=body, at=now - 6 * 60),
        "future": dict(payload=body, at=now + 6 * 60),
        "garbage": dict(payload=body, signature="t=1,v1=deadbeef"),
    }  # fmt: skip
    for name, attempt in attempts.items():
        with pytest.raises(ServiceError) as refused:
            await webhook(rpc, **attempt)  # type: ignore[arg-type]
        assert (refused.value.kind, refused.value.code) == (
            ErrorKind.INVALID,
            "invalid_signature",
        ), name
    assert (await plan_of(rpc, tenant)).tier is msg.PlanTier.STARTER
    assert await plan_changes(billing_db, tenant) == []
    assert (
        await query(billing_db, "SELECT 1 FROM inbox WHERE message_id = $1", delivery["id"]) == []
    )
    # the genuine delivery still works afterwards: nothing was remembered from the forgeries
    assert (await webhook(rpc, delivery)).status == "processed"
    assert (await plan_of(rpc, tenant)).tier is msg.PlanTier.SCALE


async def test_subscription_lifecycle_from_localstripe(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str, stripe_servers: StripeServers
) -> None:
    """Subscriptions made by localstripe through the SDK, delivered as signed webhooks."""
    start_billing()
    tenant = new_tenant()
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_servers.localstripe_url})
    customer = client.v1.customers.create(
        {"email": f"{tenant}@example.com", "metadata": {"tenant_id": tenant}}
    )
    card = client.v1.tokens.create(
        {
            "card": {
                "number": "4242424242424242",
                "exp_month": "12",
                "exp_year": "2035",
                "cvc": "123",
            }
        }
    )
    client.v1.customers.payment_sources.create(customer.id, {"source": card.id})
    product = client.v1.products.create({"name": f"Cortex growth {tenant}"})
    growth_price = f"{PRICES['growth']}_{tenant}"
    client.v1.plans.create(
        {
            "id": growth_price,
            "product": product.id,
            "amount": 9900,
            "currency": "usd",
            "interval": "month",
        }
    )
    # localstripe has no prices: its plan id plays the growth price (metadata names the tier)
    subscription = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": growth_price}],
         "metadata": {"tenant_id": tenant, "plan_tier": "growth"}}
    )  # fmt: skip
    assert subscription.status == "active"
    sub = json.loads(json.dumps(subscription.to_dict(), default=str))
    created_at = int(time.time())

    handled = await webhook(rpc, event("customer.subscription.created", sub, created=created_at))
    assert (handled.status, handled.affected_tenant_id) == ("processed", tenant)
    plan = await plan_of(rpc, tenant)
    assert (plan.tier, plan.subscription_status) == (msg.PlanTier.GROWTH, "active")
    [row] = await query(billing_db, "SELECT * FROM tenants WHERE tenant_id = $1", tenant)
    assert (row["stripe_customer_id"], row["stripe_subscription_id"]) == (
        customer.id,
        subscription.id,
    )
    assert row["period_start"] == datetime.fromtimestamp(sub["current_period_start"], UTC)

    # a failed renewal drops to the free tier (found by the Stripe customer)
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "customer": customer.id,
        "subscription": subscription.id,
    }
    await webhook(rpc, event("invoice.payment_failed", invoice, created=created_at + 1))
    plan = await plan_of(rpc, tenant)
    assert (plan.tier, plan.subscription_status) == (msg.PlanTier.STARTER, "past_due")

    cancelled = client.v1.subscriptions.cancel(subscription.id)
    gone = json.loads(json.dumps(cancelled.to_dict(), default=str))
    await webhook(rpc, event("customer.subscription.deleted", gone, created=created_at + 2))
    # a stale "active" update delivered late changes nothing
    stale = await webhook(rpc, event("customer.subscription.updated", sub, created=created_at))
    assert stale.status == "processed"
    plan = await plan_of(rpc, tenant)
    assert (plan.tier, plan.subscription_status) == (msg.PlanTier.STARTER, "canceled")
    [row] = await query(billing_db, "SELECT * FROM tenants WHERE tenant_id = $1", tenant)
    assert row["stripe_subscription_id"] is None
    assert [c["tier"] for c in await plan_changes(billing_db, tenant)] == ["growth", "starter"]


# --- Stripe checkout and portal ------------------------------------------------------------


async def test_checkout_and_portal_through_the_sdk_create_the_customer_once(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str, stripe_servers: StripeServers
) -> None:
    start_billing()
    tenant = new_tenant()
    await query(
        billing_db,
        "INSERT INTO tenants (tenant_id, email, display_name) VALUES ($1, $2, 'Ada Lovelace')",
        tenant, f"{tenant}@example.com",
    )  # fmt: skip
    with pytest.raises(ServiceError) as no_customer:
        await rpc.call(msg.CREATE_PORTAL, msg.CreatePortal(tenant_id=tenant))
    assert (no_customer.value.kind, no_customer.value.code) == (
        ErrorKind.INVALID,
        "no_billing_account",
    )

    first = await rpc.call(
        msg.CREATE_CHECKOUT, msg.CreateCheckout(tenant_id=tenant, plan_tier="pro")
    )
    second = await rpc.call(
        msg.CREATE_CHECKOUT, msg.CreateCheckout(tenant_id=tenant, plan_tier="growth")
    )
    assert first.url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert second.url != first.url

    [row] = await query(
        billing_db, "SELECT stripe_customer_id FROM tenants WHERE tenant_id = $1", tenant
    )
    customer_id = row["stripe_customer_id"]
    ls = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_servers.localstripe_url})
    mine = [
        c
        for c in ls.v1.customers.list({"limit": 100}).data
        if c.to_dict()["metadata"].get("tenant_id") == tenant
    ]
    assert [c.id for c in mine] == [customer_id]
    assert (mine[0].email, mine[0].name) == (f"{tenant}@example.com", "Ada Lovelace")

    sessions = {s["id"]: s for s in stripe_servers.fake.checkout_sessions()}
    opened = sessions[first.session_id]
    assert (opened["mode"], opened["customer"], opened["client_reference_id"]) == (
        "subscription",
        customer_id,
        tenant,
    )
    assert opened["metadata"] == {"tenant_id": tenant, "plan_tier": "pro"}
    assert opened["success_url"] == "https://app.example.com/billing/done"
    posts = [r for r in stripe_servers.fake.requests if r.method == "POST"]
    assert [r.path for r in posts] == [
        "/v1/customers",
        "/v1/checkout/sessions",
        "/v1/checkout/sessions",
    ]
    assert all(r.idempotency_key for r in posts)
    assert posts[0].idempotency_key == f"cortex-customer-{tenant}"
    assert posts[1].params["line_items"] == [{"price": PRICES["pro"], "quantity": "1"}]
    assert posts[1].params["subscription_data"] == {
        "metadata": {"tenant_id": tenant, "plan_tier": "pro"}
    }

    portal = await rpc.call(msg.CREATE_PORTAL, msg.CreatePortal(tenant_id=tenant))
    assert portal.url.startswith("https://billing.stripe.com/p/session/")
    [opened_portal] = stripe_servers.fake.portal_sessions()
    assert (opened_portal["customer"], opened_portal["return_url"]) == (
        customer_id,
        "https://app.example.com/billing",
    )

    # paying the session (Stripe's webhook) moves the plan; the same tier is then refused
    paid = stripe_servers.fake.complete_checkout(first.session_id)
    assert (await webhook(rpc, paid)).affected_tenant_id == tenant
    with pytest.raises(ServiceError) as current:
        await rpc.call(msg.CREATE_CHECKOUT, msg.CreateCheckout(tenant_id=tenant, plan_tier="pro"))
    assert (current.value.code, current.value.reply.message) == (
        "already_on_plan",
        "You are already on the pro plan.",
    )
    for tier, code in (("starter", "plan_not_purchasable"), ("gold", "unknown_plan")):
        with pytest.raises(ServiceError) as refused:
            await rpc.call(
                msg.CREATE_CHECKOUT, msg.CreateCheckout(tenant_id=tenant, plan_tier=tier)
            )
        assert (refused.value.kind, refused.value.code) == (ErrorKind.INVALID, code)
    assert len([r for r in stripe_servers.fake.requests if r.path == "/v1/customers"]) == 1


async def test_stripe_refusals_are_upstream_errors_and_a_missing_price_is_explained(
    start_billing: StartBilling, rpc: RpcClient, stripe_servers: StripeServers
) -> None:
    start_billing(
        CORTEX_BILLING_STRIPE_PRICE_GROWTH="price_unknown_to_stripe",
        CORTEX_BILLING_STRIPE_PRICE_SCALE="",
    )
    tenant = new_tenant()
    with pytest.raises(ServiceError) as refused:
        await rpc.call(
            msg.CREATE_CHECKOUT, msg.CreateCheckout(tenant_id=tenant, plan_tier="growth")
        )
    assert (refused.value.kind, refused.value.code) == (ErrorKind.UPSTREAM, "stripe_error")
    assert "No such price: 'price_unknown_to_stripe'" in refused.value.reply.message
    with pytest.raises(ServiceError) as off:
        await rpc.call(msg.CREATE_CHECKOUT, msg.CreateCheckout(tenant_id=tenant, plan_tier="scale"))
    assert (off.value.kind, off.value.code) == (ErrorKind.UNAVAILABLE, "stripe_not_configured")


# --- usage -----------------------------------------------------------------------------------


async def test_daily_usage_reads_the_call_counters_and_committed_bookings(
    start_billing: StartBilling, rpc: RpcClient, nats_url: str
) -> None:
    start_billing()
    tenant = new_tenant()
    today = datetime.now(UTC).date()
    async with connected_broker(nats_url) as broker:
        js = broker.config.connection_state.stream
        for day, calls in ((today, 5), (today.replace(day=1), 3)):
            for _ in range(calls):
                ack = await js.publish(
                    msg.calls_counter_subject(tenant, day), b"", headers={"Nats-Incr": "+1"}
                )
        assert int(ack.val) == (3 if today.day != 1 else 8)
    for i in range(3):
        await reserve(rpc, tenant, f"bk_use_{i}")
    for i in range(2):
        await rpc.call(
            msg.COMMIT_BOOKING_QUOTA,
            msg.CommitBookingQuota(tenant_id=tenant, booking_id=f"bk_use_{i}"),
        )
    usage = await rpc.call(msg.GET_DAILY_USAGE, msg.GetDailyUsage(tenant_id=tenant))
    assert usage.period_start == today.replace(day=1)
    assert usage.period_end.month == today.month and (usage.period_end + timedelta(days=1)).day == 1
    assert [d.date for d in usage.days] == [
        today.replace(day=1) + timedelta(days=n) for n in range(today.day)
    ]
    by_day = {d.date: (d.api_calls, d.bookings) for d in usage.days}
    if today.day == 1:
        assert by_day[today] == (8, 2)
    else:
        assert by_day[today] == (5, 2) and by_day[today.replace(day=1)] == (3, 0)
    assert usage.calls_today == (8 if today.day == 1 else 5)
    assert (await plan_of(rpc, tenant)).calls_today == usage.calls_today
