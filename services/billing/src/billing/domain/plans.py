"""The one table of plans, and the calendar arithmetic of periods. Pure: no I/O.

``None`` is unlimited. Bookings per month depend on the tenant's user type (identity's
``individual`` or ``developer``); the other limits do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from contracts.billing import PlanLimits, PlanTier
from contracts.identity import UserType


@dataclass(frozen=True)
class Plan:
    tier: PlanTier
    calls_per_day: int | None
    bookings_per_month_individual: int | None
    bookings_per_month_developer: int | None
    calendars: int | None
    paid: bool

    def bookings_per_month(self, user_type: UserType) -> int | None:
        if user_type is UserType.DEVELOPER:
            return self.bookings_per_month_developer
        return self.bookings_per_month_individual

    def limits(self, user_type: UserType) -> PlanLimits:
        return PlanLimits(
            tier=self.tier,
            calls_daily_limit=self.calls_per_day,
            bookings_limit=self.bookings_per_month(user_type),
            calendars_limit=self.calendars,
        )


PLANS: Mapping[PlanTier, Plan] = {
    PlanTier.STARTER: Plan(PlanTier.STARTER, 1_000, 20, 100, 2, paid=False),
    PlanTier.PRO: Plan(PlanTier.PRO, 10_000, 200, 1_000, 5, paid=True),
    PlanTier.GROWTH: Plan(PlanTier.GROWTH, 10_000, 1_000, 5_000, 20, paid=True),
    PlanTier.SCALE: Plan(PlanTier.SCALE, None, None, None, None, paid=True),
}
"""The tiers. Operators may override single limits (billing's ``plan_overrides`` setting)."""

FREE_TIER = PlanTier.STARTER

LIMIT_FIELDS = frozenset(
    {"calls_per_day", "bookings_per_month_individual", "bookings_per_month_developer", "calendars"}
)


class UnknownTier(ValueError):
    def __init__(self, value: str) -> None:
        tiers = ", ".join(t.value for t in PlanTier)
        super().__init__(f"Unknown plan tier '{value[:40]}': choose one of {tiers}.")


def parse_tier(value: str) -> PlanTier:
    try:
        return PlanTier(value.strip().lower())
    except ValueError as exc:
        raise UnknownTier(value) from exc


def plan_table(
    overrides: Mapping[PlanTier, Mapping[str, int | None]] | None = None,
) -> dict[PlanTier, Plan]:
    """The plans with an operator's overrides applied (unknown limit names are refused)."""
    table = dict(PLANS)
    for tier, changes in (overrides or {}).items():
        unknown = sorted(set(changes) - LIMIT_FIELDS)
        if unknown:
            raise ValueError(f"unknown plan limit {unknown[0]!r} for {tier.value}")
        for name, value in changes.items():
            if value is not None and value < 0:
                raise ValueError(f"{tier.value}.{name} cannot be negative")
        table[tier] = replace(table[tier], **dict(changes))  # type: ignore[arg-type]
    return table


# --- periods ------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    first = month_start(day)
    return (first + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class Period:
    """Days ``start`` through ``end``, both included."""

    start: date
    end: date

    def days_until(self, today: date) -> list[date]:
        """The period's days from its start up to ``today`` (or its end), in order."""
        last = min(self.end, today)
        return [self.start + timedelta(days=n) for n in range((last - self.start).days + 1)]


def calendar_month(now: datetime) -> Period:
    today = now.astimezone(UTC).date()
    return Period(month_start(today), next_month(today) - timedelta(days=1))


def billing_period(
    now: datetime, subscription_start: datetime | None, subscription_end: datetime | None
) -> Period:
    """The subscription's current period when ``now`` lies in it, else the calendar month.

    Stripe's period end is exclusive: the last day of the period is the day before it.
    """
    if subscription_start and subscription_end and subscription_start <= now < subscription_end:
        start = subscription_start.astimezone(UTC).date()
        end = (subscription_end.astimezone(UTC) - timedelta(microseconds=1)).date()
        return Period(start, max(start, end))
    return calendar_month(now)
