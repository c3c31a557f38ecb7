"""Messages of the billing service: plans, quota reservations, usage, Stripe."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import subjects
from contracts.envelope import Message
from contracts.identity import UserType
from contracts.rpc import EventSpec, Rpc

BILLING = subjects.BILLING


DEADLINE_DESCRIPTION = (
    "When the saga stops waiting for this answer: a command arriving later is refused with "
    "deadline_passed and does nothing"
)


class ReserveBookingQuota(Message):
    """Hold one unit of the month's booking quota for a booking (idempotent by booking id)."""

    booking_id: str = Field(max_length=100)
    deadline: datetime | None = Field(default=None, description=DEADLINE_DESCRIPTION)
    hold_until: datetime | None = Field(
        default=None,
        description="Until when the booking may still commit or release the reservation (a "
        "pending booking: past its expiry); it counts uncommitted at least that long, and "
        "at least billing's own hold",
    )


class QuotaReserved(Message):
    booking_id: str
    used: int = Field(description="Bookings this month, this reservation included")
    limit: int | None = Field(description="The plan's monthly limit; None is unlimited")


class CommitBookingQuota(Message):
    booking_id: str = Field(max_length=100)
    deadline: datetime | None = Field(default=None, description=DEADLINE_DESCRIPTION)


class ReleaseBookingQuota(Message):
    booking_id: str = Field(max_length=100)


class QuotaSettled(Message):
    booking_id: str
    state: str = Field(description="committed, released, or unknown when never reserved")


RESERVE_BOOKING_QUOTA: Final[Rpc[ReserveBookingQuota, QuotaReserved]] = Rpc(
    subjects.command(BILLING, "reserve_booking_quota"), ReserveBookingQuota, QuotaReserved,
    "Reserve one booking of the month's quota; payment_required when it is used up",
)  # fmt: skip
COMMIT_BOOKING_QUOTA: Final[Rpc[CommitBookingQuota, QuotaSettled]] = Rpc(
    subjects.command(BILLING, "commit_booking_quota"), CommitBookingQuota, QuotaSettled,
    "Count a reserved booking as used",
)  # fmt: skip
RELEASE_BOOKING_QUOTA: Final[Rpc[ReleaseBookingQuota, QuotaSettled]] = Rpc(
    subjects.command(BILLING, "release_booking_quota"), ReleaseBookingQuota, QuotaSettled,
    "Give a reservation back (compensation, cancellation)",
)  # fmt: skip


# --- plans ------------------------------------------------------------------------------


class PlanTier(StrEnum):
    STARTER = "starter"
    PRO = "pro"
    GROWTH = "growth"
    SCALE = "scale"


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanLimits(Value):
    """A tier's limits for one user type; ``None`` is unlimited."""

    tier: PlanTier
    calls_daily_limit: int | None = Field(description="Authenticated API calls per UTC day")
    bookings_limit: int | None = Field(description="Bookings per calendar month (UTC)")
    calendars_limit: int | None = Field(description="Calendar connections")


class GetPlan(Message):
    """The tenant's plan, limits and current usage (the tenant is the envelope's)."""


class PlanReply(Message):
    tier: PlanTier
    user_type: UserType
    calls_daily_limit: int | None
    bookings_limit: int | None
    calendars_limit: int | None
    bookings_used: int = Field(description="Bookings counted this calendar month (UTC)")
    calls_today: int = Field(description="API calls counted today (UTC)")
    subscription_status: str | None = Field(
        default=None, description="The Stripe subscription's status, None without one"
    )


class SetPlan(Message):
    """Move the tenant (the envelope's) to a tier: the operator's path, without Stripe."""

    tier: str = Field(max_length=40)


class PlanSet(Message):
    tier: PlanTier
    previous_tier: PlanTier
    changed: bool


# --- usage ------------------------------------------------------------------------------


class GetDailyUsage(Message):
    """Usage of the tenant's current billing period, day by day up to today (UTC)."""


class DayUsage(Value):
    date: date
    api_calls: int
    bookings: int


class DailyUsage(Message):
    period_start: date
    period_end: date = Field(description="The last day of the period (inclusive)")
    days: list[DayUsage]
    calls_today: int


# --- Stripe -----------------------------------------------------------------------------


class CreateCheckout(Message):
    """A Stripe Checkout Session (subscription mode) for a paid tier."""

    plan_tier: str = Field(max_length=40)


class CheckoutCreated(Message):
    url: str
    session_id: str


class CreatePortal(Message):
    """A Stripe Customer Portal session for the tenant's customer."""


class PortalCreated(Message):
    url: str


class ReceiveStripeWebhook(Message):
    """A Stripe webhook exactly as received: billing verifies it."""

    payload: str = Field(max_length=1_000_000)
    signature: str = Field(max_length=4000, description="The Stripe-Signature header")


class StripeWebhookHandled(Message):
    status: Literal["processed", "duplicate", "ignored"]
    event_type: str
    affected_tenant_id: str | None = None


# --- events -----------------------------------------------------------------------------


class PlanChanged(Message):
    """The tenant's tier changed (Stripe, or an operator); carries the new limits."""

    tier: PlanTier
    previous_tier: PlanTier
    source: Literal["stripe", "operator"]
    calls_daily_limit: int | None
    bookings_limit: int | None
    calendars_limit: int | None
    subscription_status: str | None = None


GET_PLAN: Final[Rpc[GetPlan, PlanReply]] = Rpc(
    subjects.command(BILLING, "get_plan"), GetPlan, PlanReply,
    "The tenant's tier, its limits and the usage counted against them",
)  # fmt: skip
SET_PLAN: Final[Rpc[SetPlan, PlanSet]] = Rpc(
    subjects.command(BILLING, "set_plan"), SetPlan, PlanSet,
    "Move a tenant to a tier (operator command); emits plan_changed",
)  # fmt: skip
GET_DAILY_USAGE: Final[Rpc[GetDailyUsage, DailyUsage]] = Rpc(
    subjects.command(BILLING, "get_daily_usage"), GetDailyUsage, DailyUsage,
    "API calls and bookings per day of the current billing period",
)  # fmt: skip
CREATE_CHECKOUT: Final[Rpc[CreateCheckout, CheckoutCreated]] = Rpc(
    subjects.command(BILLING, "create_checkout"), CreateCheckout, CheckoutCreated,
    "Create (once) the Stripe customer and a Checkout Session for a paid tier",
)  # fmt: skip
CREATE_PORTAL: Final[Rpc[CreatePortal, PortalCreated]] = Rpc(
    subjects.command(BILLING, "create_portal"), CreatePortal, PortalCreated,
    "A Stripe Customer Portal session for the tenant",
)  # fmt: skip
RECEIVE_STRIPE_WEBHOOK: Final[Rpc[ReceiveStripeWebhook, StripeWebhookHandled]] = Rpc(
    subjects.command(BILLING, "receive_stripe_webhook"), ReceiveStripeWebhook,
    StripeWebhookHandled, "Verify and apply a Stripe webhook (each event id once)",
)  # fmt: skip

PLAN_CHANGED: Final = EventSpec(
    subjects.event(BILLING, "plan_changed"), PlanChanged, "a tenant's plan changed"
)

RPCS: Final = (
    RESERVE_BOOKING_QUOTA, COMMIT_BOOKING_QUOTA, RELEASE_BOOKING_QUOTA, GET_PLAN, SET_PLAN,
    GET_DAILY_USAGE, CREATE_CHECKOUT, CREATE_PORTAL, RECEIVE_STRIPE_WEBHOOK,
)  # fmt: skip
EVENTS: Final = (PLAN_CHANGED,)


# --- the API-call counters --------------------------------------------------------------
# A JetStream counter stream (NATS 2.12+): each gateway adds to ``usage.calls.<tenant>.<day>``
# with a ``Nats-Incr`` header and reads the new total from the acknowledgement; billing
# reads the totals. The stream keeps one message (the total) per subject.

USAGE_STREAM: Final = "USAGE_COUNTERS"
USAGE_CALLS_WILDCARD: Final = "usage.calls.>"
USAGE_MAX_AGE_SECONDS: Final = 100 * 24 * 3600
"""A day's total is kept 100 days after its last increment: enough for any billing period."""

_COUNTER_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def calls_counter_subject(tenant_id: str, day: date) -> str:
    """``usage.calls.<tenant>.<YYYYMMDD>``; a tenant id that is not a safe token is refused."""
    if not _COUNTER_TOKEN.match(tenant_id):
        raise ValueError(f"not a counter token: {tenant_id!r}")
    return f"usage.calls.{tenant_id}.{day:%Y%m%d}"


def usage_stream_config() -> dict[str, object]:
    """The counter stream's configuration, identical wherever it is declared."""
    return {
        "name": USAGE_STREAM,
        "subjects": [USAGE_CALLS_WILDCARD],
        "allow_msg_counter": True,
        "allow_direct": True,
        "max_msgs_per_subject": 1,
        "max_age": USAGE_MAX_AGE_SECONDS,
    }
