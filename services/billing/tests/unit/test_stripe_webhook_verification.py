"""Stripe webhook verification (the SDK's signing scheme) and what each event means."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe

from billing.adapters.stripe_webhooks import verify
from billing.domain.stripe_events import (
    InvalidPayload,
    InvalidSignature,
    StripeEvent,
    parse,
    plan_move,
)
from contracts.billing import PlanTier
from cortex_dev.fakes.stripe import event

SECRET = "whsec_unit_test_secret"
PRICES = {"price_pro": PlanTier.PRO, "price_growth": PlanTier.GROWTH}


def sign(payload: str, secret: str = SECRET, at: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(payload, secret, at)


def body(event_type: str = "customer.subscription.updated", **obj: Any) -> str:
    return json.dumps(event(event_type, {"id": "sub_1", "object": "subscription", **obj}))


def now() -> datetime:
    return datetime.now(UTC)


def test_a_signed_event_is_accepted_and_parsed() -> None:
    payload = body(status="active")
    verified = verify(payload, sign(payload), SECRET, now())
    assert verified.type == "customer.subscription.updated"
    assert verified.id.startswith("evt_") and verified.object["status"] == "active"


@pytest.mark.parametrize("skew", [-299, 299])
def test_timestamps_within_five_minutes_either_way_pass(skew: int) -> None:
    payload = body()
    verify(payload, sign(payload, at=int(time.time()) + skew), SECRET, now())


@pytest.mark.parametrize("skew", [-301, 301, -86_400, 86_400])
def test_timestamps_more_than_five_minutes_off_either_way_are_refused(skew: int) -> None:
    payload = body()
    with pytest.raises(InvalidSignature):
        verify(payload, sign(payload, at=int(time.time()) + skew), SECRET, now())


def test_tampered_body_wrong_secret_and_bad_headers_are_refused() -> None:
    payload = body(status="active")
    header = sign(payload)
    refused = [
        (payload.replace("active", "trialing"), header, SECRET),
        (payload, sign(payload, "whsec_another"), SECRET),
        (payload, "", SECRET),
        (payload, "v1=abc", SECRET),
        (payload, "t=notanumber,v1=abc", SECRET),
        (payload, header.split(",")[0], SECRET),  # no v1
        (payload, header, ""),
    ]
    for candidate, signature, secret in refused:
        with pytest.raises(InvalidSignature) as err:
            verify(candidate, signature, secret, now())
        assert str(err.value) == (
            "The webhook signature is invalid or its timestamp is more than 5 minutes off."
        )


def test_a_signed_body_that_is_no_event_is_an_invalid_payload() -> None:
    for payload in ("not json", json.dumps({"id": "evt_1", "type": "x"}), "[]"):
        with pytest.raises(InvalidPayload):
            verify(payload, sign(payload), SECRET, now())


def stripe_event(event_type: str, obj: dict[str, Any]) -> StripeEvent:
    return parse(json.dumps(event(event_type, obj)))


def test_checkout_completed_moves_to_the_tier_it_was_opened_for() -> None:
    session = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "mode": "subscription",
        "payment_status": "paid",
        "customer": "cus_1",
        "subscription": "sub_9",
        "client_reference_id": "tn_a",
        "metadata": {"tenant_id": "tn_a", "plan_tier": "growth"},
    }
    move = plan_move(stripe_event("checkout.session.completed", session), PRICES)
    assert move is not None
    assert (move.tenant_hint, move.customer_id, move.tier, move.subscription_id) == (
        "tn_a",
        "cus_1",
        PlanTier.GROWTH,
        "sub_9",
    )
    unpaid = {**session, "payment_status": "unpaid"}
    assert plan_move(stripe_event("checkout.session.completed", unpaid), PRICES) is None
    one_off = {**session, "mode": "payment"}
    assert plan_move(stripe_event("checkout.session.completed", one_off), PRICES) is None


def subscription(status: str, price: str = "price_pro", **extra: Any) -> dict[str, Any]:
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": {"id": "cus_1", "object": "customer"},  # expanded
        "status": status,
        "metadata": {"tenant_id": "tn_a"},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_1",
                    "price": {"id": price, "object": "price"},
                    "current_period_start": 1_900_000_000,
                    "current_period_end": 1_902_592_000,
                }
            ],
        },
        **extra,
    }


def test_subscription_events_follow_the_subscription_status() -> None:
    created = plan_move(
        stripe_event("customer.subscription.created", subscription("active")), PRICES
    )
    assert created is not None and created.tier is PlanTier.PRO
    assert created.customer_id == "cus_1" and created.subscription_id == "sub_1"
    assert created.period_start == datetime.fromtimestamp(1_900_000_000, UTC)
    assert not created.ends_subscription

    upgraded = plan_move(
        stripe_event("customer.subscription.updated", subscription("trialing", "price_growth")),
        PRICES,
    )
    assert upgraded is not None and upgraded.tier is PlanTier.GROWTH

    for status in ("past_due", "unpaid", "canceled", "paused"):
        lapsed = plan_move(
            stripe_event("customer.subscription.updated", subscription(status)), PRICES
        )
        assert lapsed is not None and lapsed.tier is PlanTier.STARTER, status
    pending = plan_move(
        stripe_event("customer.subscription.created", subscription("incomplete")), PRICES
    )
    assert pending is not None and pending.tier is None

    deleted = plan_move(
        stripe_event("customer.subscription.deleted", subscription("canceled")), PRICES
    )
    assert deleted is not None and deleted.tier is PlanTier.STARTER and deleted.ends_subscription


def test_an_unknown_price_falls_back_to_the_metadata_tier_then_to_no_change() -> None:
    tagged = subscription("active", "price_other", metadata={"plan_tier": "scale"})
    move = plan_move(stripe_event("customer.subscription.updated", tagged), PRICES)
    assert move is not None and move.tier is PlanTier.SCALE
    untagged = subscription("active", "price_other", metadata={})
    move = plan_move(stripe_event("customer.subscription.updated", untagged), PRICES)
    assert move is not None and move.tier is None and move.tenant_hint is None


def test_a_failed_payment_drops_to_the_free_tier() -> None:
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_1",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1", "metadata": {"tenant_id": "tn_a"}},
        },
    }
    move = plan_move(stripe_event("invoice.payment_failed", invoice), PRICES)
    assert move is not None
    assert (move.tier, move.subscription_id, move.tenant_hint, move.subscription_status) == (
        PlanTier.STARTER,
        "sub_1",
        "tn_a",
        "past_due",
    )


def test_other_event_types_concern_no_plan() -> None:
    for event_type in ("customer.created", "invoice.paid", "charge.succeeded"):
        assert plan_move(stripe_event(event_type, {"id": "x", "customer": "cus_1"}), PRICES) is None
