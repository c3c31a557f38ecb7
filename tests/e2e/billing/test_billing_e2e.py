"""Billing end to end: the whole system as processes behind two gateways.

One system (NATS, PostgreSQL, every service, two gateway replicas) is started for the
module, with billing's Stripe API pointed at the local Stripe fake (which, with no
upstream, also serves customers). Every test makes its own tenants. Stripe webhooks are
signed with the real ``stripe`` SDK's scheme.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import stripe

from cortex_dev.fakes.stripe import FakeStripe, event
from tests.e2e import harness
from tests.e2e.harness import (
    STRIPE_WEBHOOK_SECRET,
    System,
    SystemOptions,
    Tenant,
    cortex_cli,
    rpc_tenant,
    stripe_environ,
)

pytestmark = pytest.mark.e2e

STARTER_CALLS_PER_DAY = 1_000
PLAN_KEYS = {
    "tier", "user_type", "calendars_connected", "calendars_limit", "bookings_used",
    "bookings_limit", "calls_today", "calls_daily_limit",
}  # fmt: skip
INVALID_SIGNATURE = {
    "error": "The webhook signature is invalid or its timestamp is more than 5 minutes off.",
    "code": "invalid_signature",
}


@pytest.fixture(scope="module")
def system_options(stripe_api: tuple[FakeStripe, str]) -> SystemOptions:
    """Two gateways; billing's Stripe API is the local Stripe fake."""
    _, stripe_url = stripe_api
    return SystemOptions(replicas={"gateway": 2}, environ=stripe_environ(stripe_url))


# --- helpers ---------------------------------------------------------------------------------


def new_tenant(system: System, user_type: str = "individual") -> Tenant:
    email = f"bill-{uuid.uuid4().hex[:12]}@example.com"
    return rpc_tenant(system, email, name="Billie Payer", user_type=user_type)


# 10 s unless a check says otherwise
eventually = functools.partial(harness.eventually, timeout=10.0)


def dashboard(gw: httpx.Client, tenant: Tenant) -> dict[str, Any]:
    response = gw.get("/api/v1/dashboard/summary", headers=tenant.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def post_stripe(gw: httpx.Client, body: str, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    return gw.post("/api/v1/webhooks/stripe", content=body.encode(), headers=headers)


def signed(body: str, secret: str = STRIPE_WEBHOOK_SECRET, at: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret, at)


def checkout_completed(tenant: Tenant, tier: str) -> str:
    session = {
        "id": f"cs_test_{uuid.uuid4().hex}",
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "payment_status": "paid",
        "customer": f"cus_{uuid.uuid4().hex[:14]}",
        "subscription": f"sub_{uuid.uuid4().hex[:14]}",
        "client_reference_id": tenant.tenant_id,
        "metadata": {"tenant_id": tenant.tenant_id, "plan_tier": tier},
    }
    return json.dumps(event("checkout.session.completed", session))


# --- the daily call quota and usage ------------------------------------------------------------


def test_exactly_the_daily_limit_across_two_gateways_then_429(system: System) -> None:
    tenant = new_tenant(system)
    attempts = STARTER_CALLS_PER_DAY + 60
    gateways = itertools.cycle(system.clients)
    targets = [next(gateways) for _ in range(attempts)]

    def call(gw: httpx.Client) -> httpx.Response:
        return gw.get("/api/v1/settings", headers=tenant.auth)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(call, targets))
    elapsed = time.monotonic() - started
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == STARTER_CALLS_PER_DAY, {
        s: statuses.count(s) for s in set(statuses)
    }
    assert statuses.count(429) == attempts - STARTER_CALLS_PER_DAY
    print(f"\n{attempts} calls through two gateways in {elapsed:.1f}s")

    ok = next(r for r in responses if r.status_code == 200)
    assert ok.headers["x-ratelimit-limit"] == str(STARTER_CALLS_PER_DAY)
    remaining = sorted(
        int(r.headers["x-ratelimit-remaining"]) for r in responses if r.status_code == 200
    )
    assert remaining == list(range(STARTER_CALLS_PER_DAY))  # each admitted call saw its own count
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json() == {
        "error": f"Daily API call limit reached: your plan allows {STARTER_CALLS_PER_DAY} calls "
        "per day (UTC). It resets at midnight UTC; upgrade the plan for more.",
        "code": "rate_limited",
        "retry_after_seconds": int(refused.headers["retry-after"]),
    }
    assert refused.headers["content-type"] == "application/json"
    reset = int(refused.headers["retry-after"])
    assert 0 < reset <= 86_400 and refused.headers["x-ratelimit-reset"] == str(reset)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    # later calls, at either gateway, are refused too
    for gw in system.clients:
        assert call(gw).status_code == 429

    # usage and the dashboard are still reachable at the limit, and count what was admitted
    today = datetime.now(UTC).date()
    for gw in system.clients:
        usage = gw.get("/api/v1/usage/daily", headers=tenant.auth)
        assert usage.status_code == 200, usage.text
        body = usage.json()
        assert set(body) == {"period_start", "period_end", "days", "calls_today"}
        assert body["calls_today"] == STARTER_CALLS_PER_DAY
        assert body["period_start"] == today.replace(day=1).isoformat()
        assert body["days"][-1] == {
            "date": today.isoformat(),
            "api_calls": STARTER_CALLS_PER_DAY,
            "bookings": 0,
        }
        assert len(body["days"]) == today.day
        summary = dashboard(gw, tenant)
        assert (summary["plan"]["calls_today"], summary["plan"]["calls_daily_limit"]) == (
            STARTER_CALLS_PER_DAY,
            STARTER_CALLS_PER_DAY,
        )


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_has_the_seeds_shape(system: System) -> None:
    tenant = new_tenant(system, user_type="developer")
    assert system.gw0.get("/api/v1/settings", headers=tenant.auth).status_code == 200

    def with_activity() -> dict[str, Any] | None:
        body = dashboard(system.gw1, tenant)
        ready = body["recent_activity"] and body["plan"]["user_type"] == "developer"
        return body if ready else None

    body = eventually(with_activity, "the activity feed and billing's projection caught up")
    assert set(body) == {"plan", "calendars", "recent_activity"}
    assert set(body["plan"]) == PLAN_KEYS
    assert body["plan"] == {
        "tier": "starter",
        "user_type": "developer",
        "calendars_connected": 0,
        "calendars_limit": 2,
        "bookings_used": 0,
        "bookings_limit": 100,
        "calls_today": 1,  # the settings call; the dashboard's own calls are not counted
        "calls_daily_limit": STARTER_CALLS_PER_DAY,
    }
    assert body["calendars"] == []

    def with_both_items() -> dict[str, Any] | None:
        body = dashboard(system.gw0, tenant)
        return body if len(body["recent_activity"]) == 2 else None

    activity = eventually(with_both_items, "both activity items projected")["recent_activity"]
    assert {item["type"] for item in activity} == {"tenant.created", "api_key.created"}
    assert all(set(item) == {"id", "type", "summary", "occurred_at", "ids"} for item in activity)
    assert system.gw0.get("/api/v1/dashboard/summary").status_code == 401


# --- Stripe -------------------------------------------------------------------------------------


def test_a_stripe_webhook_moves_the_plan_and_every_gateway_follows(system: System) -> None:
    tenant = new_tenant(system)
    for gw in system.clients:  # each gateway caches the starter limit
        seen = gw.get("/api/v1/settings", headers=tenant.auth)
        assert seen.headers["x-ratelimit-limit"] == str(STARTER_CALLS_PER_DAY)

    body = checkout_completed(tenant, "pro")
    now = int(time.time())
    for forged in (
        (body.replace('"pro"', '"scale"'), signed(body)),
        (body, signed(body, "whsec_someone_else")),
        (body, signed(body, at=now - 6 * 60)),
        (body, signed(body, at=now + 6 * 60)),
    ):
        refused = post_stripe(system.gw0, *forged)
        assert (refused.status_code, refused.json()) == (400, INVALID_SIGNATURE), refused.text
    missing = post_stripe(system.gw1, body, None)
    assert (missing.status_code, missing.json()) == (
        400,
        {"error": "Missing header Stripe-Signature.", "code": "invalid_signature"},
    )
    assert dashboard(system.gw0, tenant)["plan"]["tier"] == "starter"

    first = post_stripe(system.gw0, body, signed(body))
    assert (first.status_code, first.json()) == (
        200,
        {"status": "processed", "event_type": "checkout.session.completed"},
    )
    again = post_stripe(system.gw1, body, signed(body))  # Stripe's retry, at the other gateway
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")

    for gw in system.clients:
        plan = dashboard(gw, tenant)["plan"]
        assert (plan["tier"], plan["calls_daily_limit"], plan["bookings_limit"]) == (
            "pro",
            10_000,
            200,
        )

        def new_limit(gw: httpx.Client = gw) -> bool:
            response = gw.get("/api/v1/settings", headers=tenant.auth)
            return response.headers.get("x-ratelimit-limit") == "10000"

        eventually(new_limit, "the gateway dropped the cached starter limit", timeout=5)

    other = json.dumps(event("invoice.paid", {"id": "in_1", "object": "invoice"}))
    ignored = post_stripe(system.gw0, other, signed(other))
    assert (ignored.status_code, ignored.json()) == (
        200,
        {"status": "ignored", "event_type": "invoice.paid"},
    )


def test_checkout_and_portal_through_the_gateway(
    system: System, stripe_api: tuple[FakeStripe, str]
) -> None:
    fake_stripe, _ = stripe_api
    tenant = new_tenant(system)
    no_account = system.gw0.post("/api/v1/billing/portal", headers=tenant.auth)
    assert no_account.status_code == 400 and no_account.json()["code"] == "no_billing_account"

    for body, code in (
        ({"plan_tier": "gold"}, "unknown_plan"),
        ({"plan_tier": "starter"}, "plan_not_purchasable"),
    ):
        refused = system.gw1.post("/api/v1/billing/checkout", json=body, headers=tenant.auth)
        assert (refused.status_code, refused.json()["code"]) == (400, code), refused.text
    invalid = system.gw0.post("/api/v1/billing/checkout", json={}, headers=tenant.auth)
    assert (invalid.status_code, invalid.json()["code"]) == (400, "invalid_request")

    urls = []
    for gw, tier in ((system.gw0, "pro"), (system.gw1, "growth")):
        created = gw.post("/api/v1/billing/checkout", json={"plan_tier": tier}, headers=tenant.auth)
        assert created.status_code == 200, created.text
        assert set(created.json()) == {"url"}
        urls.append(created.json()["url"])
    assert all(url.startswith("https://checkout.stripe.com/c/pay/cs_test_") for url in urls)
    mine = [
        c for c in fake_stripe.customers() if c["metadata"].get("tenant_id") == tenant.tenant_id
    ]
    assert len(mine) == 1  # one customer across both checkouts

    portal = system.gw1.post("/api/v1/billing/portal", headers=tenant.auth)
    assert portal.status_code == 200, portal.text
    assert portal.json()["url"].startswith("https://billing.stripe.com/p/session/")


def test_cortex_plan_set_moves_the_plan(system: System) -> None:
    tenant = new_tenant(system)
    done = cortex_cli(system, "plan", "set", tenant.tenant_id, "scale")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "tenant_id": tenant.tenant_id,
        "tier": "scale",
        "previous_tier": "starter",
        "changed": True,
    }
    plan = dashboard(system.gw1, tenant)["plan"]
    assert (plan["tier"], plan["calls_daily_limit"], plan["bookings_limit"], plan["calendars_limit"]) == (
        "scale", None, None, None
    )  # fmt: skip

    def unlimited() -> bool:
        response = system.gw0.get("/api/v1/settings", headers=tenant.auth)
        return response.status_code == 200 and "x-ratelimit-limit" not in response.headers

    eventually(unlimited, "the gateway stopped limiting the tenant", timeout=5)

    unknown = cortex_cli(system, "plan", "set", "tn_nobody", "pro")
    assert unknown.returncode == 1
    assert json.loads(unknown.stderr) == {"error": "No such tenant.", "code": "tenant_not_found"}
    bad_tier = cortex_cli(system, "plan", "set", tenant.tenant_id, "gold")
    assert bad_tier.returncode == 2 and "invalid choice" in bad_tier.stderr


# --- the dashboard without calendars: keep last, it stops and restarts a service --------------


def test_the_dashboard_answers_while_calendars_is_stopped(system: System) -> None:
    tenant = new_tenant(system)
    calendars = system.stack.child("calendars-1")
    calendars.stop()
    try:
        started = time.monotonic()
        response = system.gw0.get("/api/v1/dashboard/summary", headers=tenant.auth)
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 5
        body = response.json()
        assert set(body) == {"plan", "calendars", "recent_activity", "unavailable"}
        assert body["unavailable"] == ["calendars"]
        assert body["calendars"] == []
        assert set(body["plan"]) == PLAN_KEYS
        assert body["plan"]["calendars_connected"] is None
        assert (body["plan"]["tier"], body["plan"]["calls_daily_limit"]) == ("starter", 1000)
    finally:
        calendars.start()
        system.stack.wait_ready(timeout=60)
    assert "unavailable" not in dashboard(system.gw1, tenant)
