"""The gateway's call quota and metering (gateway.quota) against real NATS and billing:
two quota objects on two connections play two gateway replicas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
import pytest
from billing_harness import StartBilling
from fastapi import Depends, FastAPI, Request
from faststream.nats import NatsBroker

from contracts import billing as msg
from cortex_dev.pytest_plugin import eventually
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient
from gateway.errors import install_error_handlers
from gateway.quota import Admission, CallQuota, DailyLimitReached, rate_limit_headers

pytestmark = [
    pytest.mark.integration,
    # localstripe registers plain functions as aiohttp handlers
    pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning"),
]

T = TypeVar("T")
LIMIT = 40


def new_tenant() -> str:
    return f"tn_{uuid.uuid4().hex[:20]}"


@asynccontextmanager
async def gateway_quota(nats_url: str, **options: float) -> AsyncIterator[CallQuota]:
    """One gateway replica's quota: its own connection, subscription and RPC client."""
    broker: NatsBroker = build_broker(nats_url, "quota-test")
    quota = CallQuota(broker, **options)  # type: ignore[arg-type]
    quota.subscribe()
    await broker.start()
    quota.bind(RpcClient(broker, timeout=10))
    try:
        yield quota
    finally:
        await broker.stop()


async def calls_today(rpc: RpcClient, tenant: str) -> int:
    return (await rpc.call(msg.GET_PLAN, msg.GetPlan(tenant_id=tenant))).calls_today


async def test_two_gateways_admit_exactly_the_daily_limit(
    start_billing: StartBilling, rpc: RpcClient, nats_url: str
) -> None:
    start_billing(CORTEX_BILLING_PLAN_OVERRIDES=f'{{"starter": {{"calls_per_day": {LIMIT}}}}}')
    tenant = new_tenant()
    async with gateway_quota(nats_url) as one, gateway_quota(nats_url) as two:
        attempts = [q.admit(tenant) for _ in range(60) for q in (one, two)]
        results = await asyncio.gather(*attempts, return_exceptions=True)
    admitted = [r for r in results if isinstance(r, Admission)]
    refused = [r for r in results if isinstance(r, DailyLimitReached)]
    assert (len(admitted), len(refused)) == (LIMIT, 120 - LIMIT), results
    assert sorted(a.used for a in admitted) == list(range(1, LIMIT + 1))
    assert {a.limit for a in admitted} == {LIMIT}
    # refused calls take their increment back: the counter is the number admitted
    assert await calls_today(rpc, tenant) == LIMIT
    usage = await rpc.call(msg.GET_DAILY_USAGE, msg.GetDailyUsage(tenant_id=tenant))
    assert usage.calls_today == LIMIT and usage.days[-1].api_calls == LIMIT

    refusal = refused[0]
    assert refusal.status_code == 429 and refusal.headers is not None
    reset = int(refusal.headers["Retry-After"])
    assert 0 < reset <= 86_400 and refusal.headers["X-RateLimit-Reset"] == str(reset)
    assert refusal.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert refusal.headers["X-RateLimit-Remaining"] == "0"
    assert refusal.detail == (
        f"Daily API call limit reached: your plan allows {LIMIT} calls per day (UTC). "
        "It resets at midnight UTC; upgrade the plan for more."
    )


async def test_a_plan_change_reaches_every_gateway_at_once(
    start_billing: StartBilling, rpc: RpcClient, nats_url: str
) -> None:
    start_billing(CORTEX_BILLING_PLAN_OVERRIDES='{"starter": {"calls_per_day": 3}}')
    tenant = new_tenant()
    async with (
        gateway_quota(nats_url, cache_seconds=3600) as one,
        gateway_quota(nats_url, cache_seconds=3600) as two,
    ):
        for quota in (one, two):
            assert await quota.limit(tenant) == 3
        await rpc.call(msg.SET_PLAN, msg.SetPlan(tenant_id=tenant, tier="scale"))

        async def unlimited_everywhere() -> bool:
            return all([await q.limit(tenant) is None for q in (one, two)])

        await eventually(unlimited_everywhere, "both gateways forgot the cached limit", timeout=10)
        unlimited = [await one.admit(tenant) for _ in range(5)]
        assert all(a is not None and a.limit is None and a.headers() == {} for a in unlimited)
        await rpc.call(msg.SET_PLAN, msg.SetPlan(tenant_id=tenant, tier="pro"))

        async def pro_everywhere() -> bool:
            return all([await q.limit(tenant) == 10_000 for q in (one, two)])

        await eventually(pro_everywhere, "both gateways learnt the pro limit", timeout=10)
        admission = await two.admit(tenant)
        assert admission is not None and admission.used == 6
        assert admission.headers()["X-RateLimit-Remaining"] == str(10_000 - 6)


async def test_calls_go_through_and_are_counted_while_billing_is_down(nats_url: str) -> None:
    tenant = new_tenant()
    async with gateway_quota(nats_url, timeout=0.5) as quota:
        results = [await quota.admit(tenant) for _ in range(3)]
    assert [(a.limit, a.used) for a in results if a is not None] == [
        (None, 1),
        (None, 2),
        (None, 3),
    ]


def quota_app(quota: CallQuota) -> FastAPI:
    """The gateway's error handlers and headers middleware around a quota-guarded route.

    (``Depends`` as a default: the module's postponed annotations would hide a local
    dependency from FastAPI.)"""
    app = FastAPI()
    install_error_handlers(app)
    app.middleware("http")(rate_limit_headers)

    async def tenant(request: Request) -> str:
        await quota.admit("tn_" + request.headers["x-tenant"], request)
        return request.headers["x-tenant"]

    @app.get("/api/v1/things")
    async def things(who: str = Depends(tenant)) -> dict[str, str]:
        return {"tenant": who}

    @app.get("/api/v1/usage/daily")
    async def usage(who: str = Depends(tenant)) -> dict[str, str]:
        return {"tenant": who}

    return app


async def test_http_answers_carry_the_rate_limit_headers_and_429_is_json(
    start_billing: StartBilling, rpc: RpcClient, nats_url: str
) -> None:
    start_billing(CORTEX_BILLING_PLAN_OVERRIDES='{"starter": {"calls_per_day": 2}}')
    tenant = uuid.uuid4().hex[:20]
    async with gateway_quota(nats_url) as quota:
        transport = httpx.ASGITransport(app=quota_app(quota))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            headers = {"x-tenant": tenant}
            first = await http.get("/api/v1/things", headers=headers)
            assert first.status_code == 200
            assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (
                "2",
                "1",
            )
            assert int(first.headers["x-ratelimit-reset"]) > 0
            assert (await http.get("/api/v1/things", headers=headers)).status_code == 200
            refused = await http.get("/api/v1/things", headers=headers)
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/json"
            assert refused.json() == {
                "error": "Daily API call limit reached: your plan allows 2 calls per day (UTC). "
                "It resets at midnight UTC; upgrade the plan for more.",
                "code": "rate_limited",
                "retry_after_seconds": int(refused.headers["retry-after"]),
            }
            assert refused.headers["retry-after"] == refused.headers["x-ratelimit-reset"]
            assert refused.headers["x-ratelimit-remaining"] == "0"
            # a tenant at its limit still sees its usage (neither limited nor counted)
            usage = await http.get("/api/v1/usage/daily", headers=headers)
            assert usage.status_code == 200 and "x-ratelimit-limit" not in usage.headers
    assert await calls_today(rpc, "tn_" + tenant) == 2
