"""Billing: Stripe checkout and portal, usage, and the Stripe webhook."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from contracts import billing as msg
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway.deps import PublicCaller, TenantCaller
from gateway.errors import documented
from gateway.params import schema_enum
from gateway.webhooks import WebhookReceipt, event_body, raw_payload, required_headers

router = APIRouter()


class CheckoutBody(BaseModel):
    plan_tier: str = Field(
        max_length=40,
        examples=["pro"],
        description="A paid tier; the current one is refused.",
        json_schema_extra=schema_enum(t for t in msg.PlanTier if t is not msg.PlanTier.STARTER),
    )


class RedirectUrl(BaseModel):
    url: str


@router.post(
    "/api/v1/billing/checkout",
    response_model=RedirectUrl,
    responses=documented(400, 401, 502),
    tags=["billing"],
)
async def checkout(body: CheckoutBody, call: TenantCaller) -> RedirectUrl:
    """A Stripe Checkout Session for a paid tier (``pro``, ``growth``, ``scale``): redirect
    the user to ``url``. The plan changes when Stripe confirms the payment (webhook).
    An unknown tier, a free tier or the current tier: 400."""
    created = await call(msg.CREATE_CHECKOUT, plan_tier=body.plan_tier)
    return RedirectUrl(url=created.url)


@router.post(
    "/api/v1/billing/portal",
    response_model=RedirectUrl,
    responses=documented(400, 401, 502),
    tags=["billing"],
)
async def portal(call: TenantCaller) -> RedirectUrl:
    """A Stripe Customer Portal session to manage the subscription; 400 before any checkout."""
    created = await call(msg.CREATE_PORTAL)
    return RedirectUrl(url=created.url)


class DayUsage(BaseModel):
    date: date
    api_calls: int
    bookings: int


class DailyUsage(BaseModel):
    period_start: date
    period_end: date
    days: list[DayUsage]
    calls_today: int


@router.get(
    "/api/v1/usage/daily", response_model=DailyUsage, responses=documented(401), tags=["billing"]
)
async def usage_daily(call: TenantCaller) -> DailyUsage:
    """API calls and bookings per day of the current billing period, up to today (UTC).

    The period is the subscription's, or the calendar month without one; ``period_end`` is
    its last day. Calls to the billing, usage and dashboard endpoints are not counted.
    """
    usage = await call(msg.GET_DAILY_USAGE)
    return DailyUsage(
        period_start=usage.period_start,
        period_end=usage.period_end,
        days=[DayUsage(**day.model_dump()) for day in usage.days],
        calls_today=usage.calls_today,
    )


@router.post(
    "/api/v1/webhooks/stripe",
    response_model=WebhookReceipt,
    responses=documented(400),
    tags=["webhooks"],
    openapi_extra={**event_body("Stripe"), **required_headers("Stripe-Signature", signer="Stripe")},
)
async def stripe_webhook(request: Request, call: PublicCaller) -> WebhookReceipt:
    """Stripe's subscription events, signed (``Stripe-Signature``). Verified by billing;
    each event id is applied once; event types that concern no plan are acknowledged."""
    signature = request.headers.get("stripe-signature", "")
    if not signature:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_signature", "Missing header Stripe-Signature."
        )
    payload = await raw_payload(request)
    handled = await call(msg.RECEIVE_STRIPE_WEBHOOK, payload=payload, signature=signature[:4000])
    return WebhookReceipt(status=handled.status, event_type=handled.event_type)
