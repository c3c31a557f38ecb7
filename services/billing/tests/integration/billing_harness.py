"""What billing's integration tests share: Stripe test settings and the processes' env."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import stripe

from contracts import billing as msg
from contracts import subjects
from contracts.envelope import Message
from contracts.rpc import EventSpec
from cortex_dev.fakes.stripe import FakeStripe
from cortex_runtime.broker import build_broker, ensure_stream, event_stream, publish_raw
from cortex_runtime.client import RpcClient

T = TypeVar("T")

WEBHOOK_SECRET = "whsec_billing_integration_tests"
STRIPE_KEY = "sk_test_cortex_billing_tests"
PRICES = {"pro": "price_cortex_pro", "growth": "price_cortex_growth", "scale": "price_cortex_scale"}


@dataclass
class StripeServers:
    fake: FakeStripe
    url: str  # the SDK's api base: the fake, forwarding the rest to localstripe
    localstripe_url: str


StartBilling = Callable[..., None]


def billing_env(database_url: str, nats_url: str, stripe_url: str) -> dict[str, str]:
    return {
        "CORTEX_ENV": "test",
        "CORTEX_NATS_URL": nats_url,
        "CORTEX_BILLING_DATABASE_URL": database_url,
        "CORTEX_BILLING_STRIPE_API_KEY": STRIPE_KEY,
        "CORTEX_BILLING_STRIPE_API_BASE": stripe_url,
        "CORTEX_BILLING_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CORTEX_BILLING_STRIPE_PRICE_PRO": PRICES["pro"],
        "CORTEX_BILLING_STRIPE_PRICE_GROWTH": PRICES["growth"],
        "CORTEX_BILLING_STRIPE_PRICE_SCALE": PRICES["scale"],
        "CORTEX_BILLING_CHECKOUT_SUCCESS_URL": "https://app.example.com/billing/done",
        "CORTEX_BILLING_CHECKOUT_CANCEL_URL": "https://app.example.com/billing",
        "CORTEX_BILLING_PORTAL_RETURN_URL": "https://app.example.com/billing",
    }


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def eventually(check: Callable[[], Awaitable[T]], what: str, timeout: float = 15) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout}s (last: {result!r})")
        await asyncio.sleep(0.1)


async def publish_identity_events(nats_url: str, *items: tuple[EventSpec[Any], Message]) -> None:
    """Publish events as identity's outbox relay would (its stream, Nats-Msg-Id)."""
    broker = build_broker(nats_url, "billing-tests-identity")
    await broker.connect()
    try:
        await ensure_stream(broker, event_stream(subjects.IDENTITY))
        for spec, event in items:
            await publish_raw(
                broker,
                spec.subject,
                event.model_dump_json().encode(),
                {"Nats-Msg-Id": event.message_id},
            )
    finally:
        await broker.stop()


async def signed_webhook(rpc: RpcClient, payload: dict[str, Any]) -> msg.StripeWebhookHandled:
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
    return await rpc.call(
        msg.RECEIVE_STRIPE_WEBHOOK, msg.ReceiveStripeWebhook(payload=body, signature=header)
    )
