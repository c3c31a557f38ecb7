"""What billing's integration tests share beyond cortex_dev.pytest_plugin: Stripe test
settings, the processes' env and signed Stripe webhooks."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe

from contracts import billing as msg
from cortex_dev.fakes.stripe import FakeStripe
from cortex_runtime.client import RpcClient

WEBHOOK_SECRET = "whsec_billing_integration_tests"
STRIPE_KEY = "sk_test_cortex_billing_tests"
PRICES = {"pro": "price_cortex_pro", "growth": "price_cortex_growth", "scale": "price_cortex_scale"}


@dataclass
class StripeServers:
    fake: FakeStripe
    url: str  # the SDK's api base: the fake, forwarding the rest to localstripe
    localstripe_url: str


StartBilling = Callable[..., None]


def billing_env(stripe_url: str) -> dict[str, str]:
    """Billing's settings here, on top of its database and NATS."""
    return {
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


async def signed_webhook(rpc: RpcClient, payload: dict[str, Any]) -> msg.StripeWebhookHandled:
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
    return await rpc.call(
        msg.RECEIVE_STRIPE_WEBHOOK, msg.ReceiveStripeWebhook(payload=body, signature=header)
    )
