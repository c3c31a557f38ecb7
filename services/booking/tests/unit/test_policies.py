"""Policy validation and evaluation: pure domain code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.domain.policies import (
    BookingFacts,
    Decision,
    PolicyInvalid,
    check_email,
    check_trust_level,
    clean_text,
    decide,
    evaluation_order,
    validate_policy,
)
from contracts.policies import ConditionType, PolicyAction, PolicyInfo, TrustLevel

NY = "America/New_York"
BERLIN = "Europe/Berlin"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def policy(
    condition_type: str,
    condition_value: str,
    action: str = "deny",
    *,
    priority: int = 0,
    enabled: bool = True,
    age: int = 0,
    id: str | None = None,
    name: str | None = None,
) -> PolicyInfo:
    """A validated policy; ``age`` minutes later than T0 (larger is newer)."""
    valid = validate_policy(condition_type, condition_value, action)
    pid = id or f"pol_{condition_type}_{age}_{priority}"
    return PolicyInfo(
        id=pid,
        name=name or pid,
        condition_type=valid.condition_type,
        condition_value=valid.condition_value,
        action=valid.action,
        priority=priority,
        enabled=enabled,
        created_at=T0 + timedelta(minutes=age),
    )


def facts(
    start: datetime = datetime(2026, 3, 10, 14, 0, tzinfo=UTC),
    minutes: int = 30,
    *,
    end: datetime | None = None,
    attendee: str = "bob@partner.io",
    level: TrustLevel = TrustLevel.STANDARD,
    owner: str = "owner@acme.com",
    tz: str = "UTC",
) -> BookingFacts:
    return BookingFacts(
        attendee_email=attendee,
        caller_trust_level=level,
        owner_email=owner,
        owner_timezone=tz,
        start=start,
        end=end or start.astimezone(UTC) + timedelta(minutes=minutes),  # real, not wall, time
    )


def local(tz: str, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz))


def denied_by(decision: Decision) -> str | None:
    return decision.policy_id if decision.action is PolicyAction.DENY else None


# --- validation --------------------------------------------------------------------------------


def invalid_code(condition_type: str, value: str, action: str = "deny") -> str:
    with pytest.raises(PolicyInvalid) as refused:
        validate_policy(condition_type, value, action)
    assert str(refused.value).endswith(".")
    return refused.value.code


def test_unknown_condition_type_and_action_are_refused() -> None:
    assert invalid_code("caller_country", "FR") == "invalid_condition_type"
    assert invalid_code("caller_domain", "example.com", "maybe") == "invalid_action"
    assert invalid_code("caller_domain", "example.com", "") == "invalid_action"


@pytest.mark.parametrize("action", ["allow", "deny", "require_confirmation", " DENY "])
def test_every_action_is_accepted(action: str) -> None:
    valid = validate_policy("caller_domain", "example.com", action)
    assert valid.action is PolicyAction(action.strip().lower())


@pytest.mark.parametrize(
    ("kind", "value", "canonical"),
    [
        ("caller_domain", "example.com", "example.com"),
        ("caller_domain", "@Sub.Example.COM", "sub.example.com"),
        ("caller_domain", "Internal", "internal"),
        ("caller_domain", "external", "external"),
        ("caller_domain", "bücher.de", "bücher.de"),
        ("caller_email", " Alice@Example.com ", "alice@example.com"),
        ("caller_email", "ali\u200bce@example.com", "alice@example.com"),
        ("caller_trust_level", "Restricted", "restricted"),
        ("caller_trust_level", "blocked", "blocked"),
        ("duration_over", "60", "60"),
        ("duration_over", "1", "1"),
        ("duration_over", "1440", "1440"),
        ("duration_over", "045", "45"),
        ("weekday", "sat, Sun", "sat,sun"),
        ("weekday", "fri,mon,mon", "mon,fri"),
        ("weekday", "Monday,tuesday", "mon,tue"),
        ("outside_hours", "09:00-17:00", "09:00-17:00"),
        ("outside_hours", "9:00 - 17:30", "09:00-17:30"),
        ("outside_hours", "22:00-06:00", "22:00-06:00"),
        ("outside_hours", "18:00-24:00", "18:00-24:00"),
    ],
)
def test_values_are_accepted_in_canonical_form(kind: str, value: str, canonical: str) -> None:
    valid = validate_policy(kind, value, "deny")
    assert valid.condition_type is ConditionType(kind)
    assert valid.condition_value == canonical


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("caller_domain", ""),
        ("caller_domain", "example"),
        ("caller_domain", "not a domain"),
        ("caller_domain", "-bad.com"),
        ("caller_domain", "alice@example.com"),
        ("caller_email", "alice"),
        ("caller_email", "alice@example"),
        ("caller_email", "a b@example.com"),
        ("caller_trust_level", "admin"),
        ("caller_trust_level", ""),
        ("duration_over", "0"),
        ("duration_over", "1441"),
        ("duration_over", "-5"),
        ("duration_over", "1.5"),
        ("duration_over", "thirty"),
        ("duration_over", "٣"),  # a digit, but not an ASCII one
        ("weekday", ""),
        ("weekday", "funday"),
        ("weekday", "mon,,tue"),
        ("outside_hours", "09:00"),
        ("outside_hours", "0900-1700"),
        ("outside_hours", "25:00-26:00"),
        ("outside_hours", "09:60-17:00"),
        ("outside_hours", "09:00-09:00"),
        ("outside_hours", "24:00-06:00"),
        ("outside_hours", "09:00-17:00-18:00"),
    ],
)
def test_bad_values_are_refused(kind: str, value: str) -> None:
    assert invalid_code(kind, value) == "invalid_condition_value"


def test_error_sentences_quote_the_value_cleanly() -> None:
    with pytest.raises(PolicyInvalid) as refused:
        validate_policy("duration_over", "ab\x00c\u200d", "deny")
    assert "'abc'" in str(refused.value) and "1 to 1440" in str(refused.value)


def test_trust_levels_emails_and_text_cleaning() -> None:
    assert [check_trust_level(v) for v in ("trusted", "STANDARD", " restricted")] == [
        TrustLevel.TRUSTED,
        TrustLevel.STANDARD,
        TrustLevel.RESTRICTED,
    ]
    with pytest.raises(PolicyInvalid) as refused:
        check_trust_level("vip")
    assert refused.value.code == "invalid_trust_level"
    assert check_email(" Alice@Example.com\u200b ") == "Alice@Example.com"
    with pytest.raises(PolicyInvalid):
        check_email("x" * 310 + "@example.com")
    assert clean_text("Al\u200bice\x07  \n Smith", 200) == "Alice Smith"
    assert clean_text("x" * 300, 200) == "x" * 200


# --- evaluation order ----------------------------------------------------------------------------


def test_no_policy_allows() -> None:
    decision = decide([], facts())
    assert decision.action is PolicyAction.ALLOW and decision.policy_id is None
    assert decision.allowed


def test_higher_priority_first_then_oldest_first() -> None:
    low_deny = policy("duration_over", "10", "deny", priority=1, id="low")
    high_allow = policy("duration_over", "10", "allow", priority=5, id="high")
    assert decide([low_deny, high_allow], facts()).policy_id == "high"

    older = policy("duration_over", "10", "require_confirmation", priority=3, age=1, id="b_older")
    newer = policy("duration_over", "10", "deny", priority=3, age=2, id="a_newer")
    assert decide([newer, older], facts()).policy_id == "b_older"
    same_time = [policy("duration_over", "10", "deny", id=i, age=0) for i in ("pol_b", "pol_a")]
    assert decide(same_time, facts()).policy_id == "pol_a"  # created together: by id
    assert [p.id for p in evaluation_order([low_deny, newer, high_allow, older])] == [
        "high",
        "b_older",
        "a_newer",
        "low",
    ]


def test_negative_priority_and_first_match_wins() -> None:
    never = policy("duration_over", "600", "deny", priority=100, id="never")
    last = policy("duration_over", "10", "deny", priority=-5, id="last")
    assert denied_by(decide([last, never], facts())) == "last"


def test_disabled_policies_are_ignored() -> None:
    off = policy("duration_over", "10", "deny", priority=9, enabled=False, id="off")
    on = policy("duration_over", "10", "require_confirmation", priority=1, id="on")
    assert decide([off, on], facts()).policy_id == "on"
    assert decide([off], facts()).action is PolicyAction.ALLOW
    assert [p.id for p in evaluation_order([off, on])] == ["on"]


@pytest.mark.parametrize("action", list(PolicyAction))
def test_each_action_decides_and_names_the_policy(action: PolicyAction) -> None:
    rule = policy("duration_over", "10", action.value, id="p1", name="Long meetings")
    decision = decide([rule], facts())
    assert decision == Decision(action, "p1", "Long meetings", decision.reason)
    assert "Long meetings" in decision.reason
    assert decision.allowed is (action is not PolicyAction.DENY)


def test_blocked_caller_is_always_denied_before_policies() -> None:
    allow_all = policy("duration_over", "1", "allow", priority=1000, id="allow_all")
    allow_blocked = policy("caller_trust_level", "blocked", "allow", priority=2000)
    decision = decide([allow_all, allow_blocked], facts(level=TrustLevel.BLOCKED))
    assert decision.action is PolicyAction.DENY
    assert decision.policy_id is None and decision.policy_name is None
    assert "blocked" in decision.reason
    assert decide([], facts(level=TrustLevel.BLOCKED)).action is PolicyAction.DENY


# --- conditions ---------------------------------------------------------------------------------


def test_caller_domain_explicit_internal_and_external() -> None:
    partner = policy("caller_domain", "partner.io", id="partner")
    internal = policy("caller_domain", "internal", id="internal")
    external = policy("caller_domain", "external", id="external")
    colleague = facts(attendee="Carol@ACME.com", owner="owner@acme.com")
    outsider = facts(attendee="bob@partner.io", owner="owner@acme.com")
    subdomain = facts(attendee="eve@mail.acme.com", owner="owner@acme.com")

    assert denied_by(decide([partner], outsider)) == "partner"
    assert denied_by(decide([partner], colleague)) is None
    assert denied_by(decide([internal], colleague)) == "internal"
    assert denied_by(decide([internal], outsider)) is None
    assert denied_by(decide([external], outsider)) == "external"
    assert denied_by(decide([external], colleague)) is None
    assert denied_by(decide([external], subdomain)) == "external"  # another domain


def test_caller_email_is_case_insensitive() -> None:
    rule = policy("caller_email", "Bob@Partner.io", id="bob")
    assert denied_by(decide([rule], facts(attendee="bob@partner.io"))) == "bob"
    assert denied_by(decide([rule], facts(attendee=" BOB@PARTNER.IO "))) == "bob"
    assert denied_by(decide([rule], facts(attendee="bobby@partner.io"))) is None


@pytest.mark.parametrize("level", [lvl for lvl in TrustLevel if lvl is not TrustLevel.BLOCKED])
def test_caller_trust_level(level: TrustLevel) -> None:
    rules = [policy("caller_trust_level", lvl.value, id=lvl.value) for lvl in TrustLevel]
    assert denied_by(decide(rules, facts(level=level))) == level.value


def test_unknown_caller_is_standard() -> None:
    made = BookingFacts(
        attendee_email="x@y.com",
        owner_email="o@acme.com",
        owner_timezone="UTC",
        start=T0,
        end=T0 + timedelta(minutes=30),
    )
    assert made.caller_trust_level is TrustLevel.STANDARD
    rule = policy("caller_trust_level", "standard", "require_confirmation", id="std")
    assert decide([rule], made).action is PolicyAction.REQUIRE_CONFIRMATION


def test_duration_over_is_strictly_longer() -> None:
    rule = policy("duration_over", "60", id="long")
    assert denied_by(decide([rule], facts(minutes=60))) is None
    assert denied_by(decide([rule], facts(minutes=61))) == "long"
    # real time, not wall-clock time: 22:00 EST to 06:00 EDT across spring forward is 7 hours
    seven = policy("duration_over", "420", id="seven")
    night = facts(end=local(NY, 2026, 3, 8, 6, 0), start=local(NY, 2026, 3, 7, 22, 0), tz=NY)
    assert denied_by(decide([seven], night)) is None
    assert denied_by(decide([policy("duration_over", "419", id="less")], night)) == "less"


def test_weekday_is_the_local_start_day_in_the_owners_zone() -> None:
    sunday = policy("weekday", "sun", id="sunday")
    # Monday 03:00 UTC is still Sunday 23:00 in New York (EDT, after 2026-03-08)
    late_sunday = facts(datetime(2026, 3, 16, 3, 0, tzinfo=UTC), tz=NY)
    assert denied_by(decide([sunday], late_sunday)) == "sunday"
    assert denied_by(decide([sunday], facts(datetime(2026, 3, 16, 3, 0, tzinfo=UTC)))) is None
    # Saturday 23:30 UTC is Sunday 00:30 in Berlin
    berlin_sunday = facts(datetime(2026, 3, 14, 23, 30, tzinfo=UTC), tz=BERLIN)
    assert denied_by(decide([sunday], berlin_sunday)) == "sunday"
    weekend = policy("weekday", "sat,sun", id="weekend")
    friday_evening = facts(local(NY, 2026, 3, 13, 23, 0), minutes=120, tz=NY)
    assert denied_by(decide([weekend], friday_evening)) is None  # starts on Friday


def test_outside_hours_any_part_outside_the_local_window() -> None:
    rule = policy("outside_hours", "09:00-17:00", id="hours")

    def booked(h: int, m: int, minutes: int) -> str | None:
        return denied_by(
            decide([rule], facts(local(BERLIN, 2026, 6, 10, h, m), minutes, tz=BERLIN))
        )

    assert booked(9, 0, 30) is None
    assert booked(16, 30, 30) is None  # ends exactly at 17:00
    assert booked(9, 0, 8 * 60) is None  # the whole window
    assert booked(8, 45, 30) == "hours"
    assert booked(16, 45, 30) == "hours"
    assert booked(20, 0, 30) == "hours"
    assert booked(16, 0, 24 * 60) == "hours"  # through the night into the next window


def test_outside_hours_window_across_midnight() -> None:
    night = policy("outside_hours", "22:00-06:00", id="night")

    def booked(start: datetime, minutes: int) -> str | None:
        return denied_by(decide([night], facts(start, minutes, tz=BERLIN)))

    assert booked(local(BERLIN, 2026, 6, 10, 23, 0), 120) is None  # 23:00-01:00
    assert booked(local(BERLIN, 2026, 6, 11, 0, 30), 60) is None  # after midnight
    assert booked(local(BERLIN, 2026, 6, 10, 22, 0), 8 * 60) is None  # the whole night
    assert booked(local(BERLIN, 2026, 6, 11, 5, 30), 60) == "night"  # 05:30-06:30
    assert booked(local(BERLIN, 2026, 6, 10, 21, 30), 60) == "night"  # 21:30-22:30
    assert booked(local(BERLIN, 2026, 6, 10, 12, 0), 30) == "night"


def test_outside_hours_on_dst_days_in_the_owners_zone() -> None:
    morning = policy("outside_hours", "09:00-17:00", id="hours")
    # 2026-03-10 New York is EDT (-04:00): 13:00Z is 09:00 local (at EST it would be 08:00)
    nine_edt = facts(datetime(2026, 3, 10, 13, 0, tzinfo=UTC), tz=NY)
    assert denied_by(decide([morning], nine_edt)) is None
    half_past_eight = facts(datetime(2026, 3, 10, 12, 30, tzinfo=UTC), tz=NY)
    assert denied_by(decide([morning], half_past_eight)) == "hours"

    # spring forward (2026-03-08, 02:00 -> 03:00): 01:00-04:00 local is two real hours
    early = policy("outside_hours", "01:00-04:00", id="early")
    opens = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST
    assert denied_by(decide([early], facts(opens, 120, tz=NY))) is None  # until 04:00 EDT
    assert denied_by(decide([early], facts(opens, 135, tz=NY))) == "early"

    # fall back (2026-11-01, 02:00 -> 01:00): 00:00-03:00 local is four real hours
    late = policy("outside_hours", "00:00-03:00", id="late")
    opens = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    assert denied_by(decide([late], facts(opens, 240, tz=NY))) is None  # until 03:00 EST
    assert denied_by(decide([late], facts(opens, 241, tz=NY))) == "late"

    # a night window across the spring-forward midnight: 22:00 EST to 06:00 EDT, 7 real hours
    night = policy("outside_hours", "22:00-06:00", id="night")
    dusk = local(NY, 2026, 3, 7, 22, 0)
    assert denied_by(decide([night], facts(dusk, 7 * 60, tz=NY))) is None
    assert denied_by(decide([night], facts(dusk, 7 * 60 + 30, tz=NY))) == "night"


def test_unknown_owner_zone_falls_back_to_utc() -> None:
    rule = policy("outside_hours", "09:00-17:00", id="hours")
    at_ten_utc = facts(datetime(2026, 6, 10, 10, 0, tzinfo=UTC), tz="Mars/Olympus")
    assert denied_by(decide([rule], at_ten_utc)) is None


def test_a_combination_of_policies() -> None:
    rules = [
        policy("caller_domain", "external", "deny", priority=100, id="no_external", age=1),
        policy("caller_trust_level", "trusted", "allow", priority=200, id="trusted_ok", age=2),
        policy("outside_hours", "09:00-17:00", "require_confirmation", priority=50, id="late"),
    ]
    owner = "owner@acme.com"
    evening = local(NY, 2026, 3, 10, 18, 0)
    outsider = facts(evening, attendee="x@other.org", owner=owner, tz=NY)
    trusted_outsider = facts(
        evening, attendee="x@other.org", owner=owner, tz=NY, level=TrustLevel.TRUSTED
    )
    colleague = facts(evening, attendee="c@acme.com", owner=owner, tz=NY)
    assert decide(rules, outsider).policy_id == "no_external"
    assert decide(rules, trusted_outsider).action is PolicyAction.ALLOW
    assert decide(rules, colleague).action is PolicyAction.REQUIRE_CONFIRMATION
