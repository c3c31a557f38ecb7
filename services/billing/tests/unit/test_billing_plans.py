"""The plan table and billing periods."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime

import pytest

from billing.domain.plans import (
    PLANS,
    Period,
    UnknownTier,
    billing_period,
    calendar_month,
    parse_tier,
    plan_table,
)
from contracts.billing import PlanLimits, PlanTier
from contracts.identity import UserType


def test_the_tiers_and_their_limits() -> None:
    starter, pro, growth, scale = (PLANS[t] for t in PlanTier)
    assert starter.limits(UserType.INDIVIDUAL) == PlanLimits(
        tier=PlanTier.STARTER, calls_daily_limit=1_000, bookings_limit=20, calendars_limit=2
    )
    assert starter.bookings_per_month(UserType.DEVELOPER) == 100
    assert pro.calls_per_day == growth.calls_per_day == 10_000
    assert scale.limits(UserType.DEVELOPER) == PlanLimits(
        tier=PlanTier.SCALE, calls_daily_limit=None, bookings_limit=None, calendars_limit=None
    )
    assert [p.paid for p in PLANS.values()] == [False, True, True, True]


@pytest.mark.parametrize("user_type", list(UserType))
def test_each_tier_allows_at_least_what_the_one_below_allows(user_type: UserType) -> None:
    def size(value: int | None) -> float:
        return math.inf if value is None else value

    tiers = [PLANS[t].limits(user_type) for t in PlanTier]
    for lower, higher in itertools.pairwise(tiers):
        for name in ("calls_daily_limit", "bookings_limit", "calendars_limit"):
            assert size(getattr(lower, name)) <= size(getattr(higher, name)), (lower, higher)


def test_operator_overrides_replace_single_limits() -> None:
    table = plan_table({PlanTier.STARTER: {"calls_per_day": 5, "calendars": None}})
    assert table[PlanTier.STARTER].calls_per_day == 5
    assert table[PlanTier.STARTER].calendars is None
    assert table[PlanTier.STARTER].bookings_per_month_individual == 20
    assert table[PlanTier.PRO] == PLANS[PlanTier.PRO]
    assert PLANS[PlanTier.STARTER].calls_per_day == 1_000  # the table itself is untouched
    with pytest.raises(ValueError, match="unknown plan limit 'calls'"):
        plan_table({PlanTier.PRO: {"calls": 1}})
    with pytest.raises(ValueError, match="negative"):
        plan_table({PlanTier.PRO: {"calendars": -1}})


def test_tiers_are_parsed_leniently_and_unknown_ones_named() -> None:
    assert parse_tier(" Pro ") is PlanTier.PRO
    with pytest.raises(UnknownTier) as unknown:
        parse_tier("platinum")
    assert str(unknown.value) == (
        "Unknown plan tier 'platinum': choose one of starter, pro, growth, scale."
    )


def test_the_calendar_month_is_the_period_without_a_subscription() -> None:
    now = datetime(2028, 2, 14, 23, 59, tzinfo=UTC)
    assert calendar_month(now) == Period(date(2028, 2, 1), date(2028, 2, 29))
    assert billing_period(now, None, None) == calendar_month(now)
    december = calendar_month(datetime(2027, 12, 31, 12, tzinfo=UTC))
    assert december == Period(date(2027, 12, 1), date(2027, 12, 31))


def test_a_subscription_period_ends_the_day_before_stripes_exclusive_end() -> None:
    start = datetime(2028, 1, 20, 10, 30, tzinfo=UTC)
    end = datetime(2028, 2, 20, 10, 30, tzinfo=UTC)
    inside = datetime(2028, 2, 3, tzinfo=UTC)
    assert billing_period(inside, start, end) == Period(date(2028, 1, 20), date(2028, 2, 20))
    exact = datetime(2028, 2, 20, 0, 0, tzinfo=UTC)
    assert billing_period(exact, start, datetime(2028, 2, 20, tzinfo=UTC)) == calendar_month(exact)
    # a period the webhooks did not renew: the calendar month
    later = datetime(2028, 3, 5, tzinfo=UTC)
    assert billing_period(later, start, end) == Period(date(2028, 3, 1), date(2028, 3, 31))


def test_days_of_a_period_stop_at_today() -> None:
    period = Period(date(2028, 2, 1), date(2028, 2, 29))
    assert period.days_until(date(2028, 2, 3)) == [date(2028, 2, d) for d in (1, 2, 3)]
    assert len(period.days_until(date(2028, 3, 10))) == 29
