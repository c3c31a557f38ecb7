"""Stripe webhooks: what a verified delivery means for a tenant's plan. Pure: no I/O, no SDK.

Verifying a delivery's signature is the SDK's (``billing.adapters.stripe_webhooks``); it
raises the errors declared here and hands :func:`parse` the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing.domain.plans import FREE_TIER
from contracts.billing import PlanTier

HANDLED_TYPES = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.payment_failed",
    }
)
# the subscription statuses in which the tenant has the tier it pays for
PAYING = frozenset({"active", "trialing"})
# ...in which it falls back to the free tier
LAPSED = frozenset({"canceled", "unpaid", "incomplete_expired", "past_due", "paused"})
# ...that still bill (or may): a deleted tenant's subscription in one of them is cancelled
LIVE_SUBSCRIPTION = frozenset({"active", "trialing", "past_due", "unpaid", "incomplete", "paused"})


class InvalidSignature(ValueError):
    """The delivery is not from Stripe, was altered, or is too old or too new."""

    def __init__(self) -> None:
        super().__init__(
            "The webhook signature is invalid or its timestamp is more than 5 minutes off."
        )


class InvalidPayload(ValueError):
    def __init__(self) -> None:
        super().__init__("The webhook body is not a Stripe event.")


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: datetime
    object: Mapping[str, Any]


def parse(payload: str) -> StripeEvent:
    try:
        event = json.loads(payload)
        data = event["data"]["object"]
        if not isinstance(data, dict):
            raise TypeError("data.object is not an object")
        return StripeEvent(
            id=str(event["id"])[:200],
            type=str(event["type"])[:200],
            created=datetime.fromtimestamp(int(event.get("created") or 0), UTC),
            object=data,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidPayload from exc


# --- what an event means ---------------------------------------------------------------


@dataclass(frozen=True)
class PlanMove:
    """What an event says about a tenant's plan and subscription.

    ``tier`` None leaves the tier as it is. ``ends_subscription``: the subscription named
    is over (deleted, or canceled for good).
    """

    tenant_hint: str | None
    customer_id: str | None
    tier: PlanTier | None
    subscription_id: str | None = None
    subscription_status: str | None = None
    ends_subscription: bool = False
    period_start: datetime | None = None
    period_end: datetime | None = None


def _text(value: Any) -> str | None:
    """An id that may come expanded (an object with ``id``) or as a string."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value)[:200] if value else None


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _tier(value: Any) -> PlanTier | None:
    try:
        return PlanTier(str(value)) if value else None
    except ValueError:
        return None


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC) if value else None
    except (TypeError, ValueError, OverflowError):
        return None


def _items(subscription: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    return [i for i in data if isinstance(i, Mapping)] if isinstance(data, list) else []


def subscription_tier(
    subscription: Mapping[str, Any], tier_of_price: Mapping[str, PlanTier]
) -> PlanTier | None:
    """The tier a subscription pays for: by its price id, else by its metadata."""
    for item in _items(subscription):
        for key in ("price", "plan"):
            price_id = _text(item.get(key))
            if price_id and price_id in tier_of_price:
                return tier_of_price[price_id]
    return _tier(_metadata(subscription).get("plan_tier"))


def _period(subscription: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    # newer API versions keep the period on the items
    sources = [subscription, *_items(subscription)]
    for source in sources:
        start, end = (
            _moment(source.get("current_period_start")),
            _moment(source.get("current_period_end")),
        )
        if start and end:
            return start, end
    return None, None


def plan_move(event: StripeEvent, tier_of_price: Mapping[str, PlanTier]) -> PlanMove | None:
    """The plan change an event asks for; None when it concerns no plan."""
    if event.type not in HANDLED_TYPES:
        return None
    obj = event.object
    if event.type == "checkout.session.completed":
        if obj.get("mode") != "subscription":
            return None
        if obj.get("payment_status") not in ("paid", "no_payment_required"):
            return None  # an asynchronous payment: the subscription events will follow
        metadata = _metadata(obj)
        return PlanMove(
            tenant_hint=_text(obj.get("client_reference_id")) or _text(metadata.get("tenant_id")),
            customer_id=_text(obj.get("customer")),
            tier=_tier(metadata.get("plan_tier")),
            subscription_id=_text(obj.get("subscription")),
            subscription_status="active",
        )
    if event.type.startswith("customer.subscription."):
        status = str(obj.get("status") or "")
        deleted = event.type == "customer.subscription.deleted"
        start, end = _period(obj)
        tier: PlanTier | None
        if deleted or status in LAPSED:
            tier = FREE_TIER
        elif status in PAYING:
            tier = subscription_tier(obj, tier_of_price)
        else:  # incomplete: the first payment is still being made
            tier = None
        ended = deleted or status in ("canceled", "incomplete_expired")
        return PlanMove(
            tenant_hint=_text(_metadata(obj).get("tenant_id")),
            customer_id=_text(obj.get("customer")),
            tier=tier,
            subscription_id=_text(obj.get("id")),
            subscription_status="canceled" if deleted else status or None,
            ends_subscription=ended,
            period_start=None if ended else start,
            period_end=None if ended else end,
        )
    if event.type == "invoice.payment_failed":
        parent = obj.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
        subscription = obj.get("subscription") or (
            details.get("subscription") if isinstance(details, Mapping) else None
        )
        hint = _metadata(details).get("tenant_id") if isinstance(details, Mapping) else None
        return PlanMove(
            tenant_hint=_text(hint),
            customer_id=_text(obj.get("customer")),
            tier=FREE_TIER,
            subscription_id=_text(subscription),
            subscription_status="past_due",
        )
    return None
