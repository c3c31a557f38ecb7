"""What billing's integration tests share: Stripe test settings and the processes' env."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cortex_dev.fakes.stripe import FakeStripe

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
