"""Callers and booking policies: validation and evaluation. Pure functions, no I/O.

A policy is ``(condition_type, condition_value, action)``. Values are checked (and put in
a canonical form) when a policy is created or changed, so evaluation never meets a value
it cannot read. :func:`decide` evaluates the enabled policies by descending priority,
oldest first among equals; the first that matches decides and none matching allows.
A ``blocked`` caller is denied before any policy is looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.formats import (
    EMAIL_MAX,
    WEEKDAYS,
    InvalidEmail,
    InvalidTimeOfDay,
    email_domain,
    format_hhmm,
    normalise_email,
    parse_email,
    parse_hhmm,
)
from contracts.policies import ConditionType, PolicyAction, PolicyInfo, TrustLevel
from contracts.text import clean_text, shown

_WEEKDAY_NAMES: Final[dict[str, str]] = {
    **{day: day for day in WEEKDAYS},
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu",
    "friday": "fri", "saturday": "sat", "sunday": "sun",
    "tues": "tue", "weds": "wed", "thur": "thu", "thurs": "thu",
}  # fmt: skip
INTERNAL: Final = "internal"
EXTERNAL: Final = "external"
MAX_DURATION_MINUTES: Final = 1440
MAX_NAME: Final = 200
MAX_EMAIL: Final = EMAIL_MAX

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN: Final = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")


class PolicyInvalid(ValueError):
    """A policy (or caller) value that is refused; the message is a sentence safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- text ---------------------------------------------------------------------------------


def _shown(value: str) -> str:
    """A value safe to quote back in an error sentence."""
    return shown(value)


def check_email(value: str) -> str:
    """The e-mail address (case kept, ``contracts.formats.parse_email``); ``invalid_email``
    otherwise."""
    try:
        return parse_email(value)
    except InvalidEmail as refused:
        raise PolicyInvalid(refused.code, str(refused)) from None


def check_name(value: str, what: str = "A policy") -> str:
    name = clean_text(value, MAX_NAME)
    if not name:
        raise PolicyInvalid("invalid_name", f"{what} needs a name.")
    return name


def check_trust_level(value: str) -> TrustLevel:
    try:
        return TrustLevel(value.strip().lower())
    except ValueError:
        levels = ", ".join(level.value for level in TrustLevel)
        raise PolicyInvalid(
            "invalid_trust_level",
            f"'{_shown(value)}' is not a trust level; use one of {levels}.",
        ) from None


# --- validation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidPolicy:
    condition_type: ConditionType
    condition_value: str  # canonical form
    action: PolicyAction


def check_condition_type(value: str) -> ConditionType:
    try:
        return ConditionType(value.strip().lower())
    except ValueError:
        kinds = ", ".join(kind.value for kind in ConditionType)
        raise PolicyInvalid(
            "invalid_condition_type",
            f"'{_shown(value)}' is not a condition type; use one of {kinds}.",
        ) from None


def check_action(value: str) -> PolicyAction:
    try:
        return PolicyAction(value.strip().lower())
    except ValueError:
        actions = ", ".join(action.value for action in PolicyAction)
        raise PolicyInvalid(
            "invalid_action", f"'{_shown(value)}' is not an action; use one of {actions}."
        ) from None


def validate_policy(condition_type: str, condition_value: str, action: str) -> ValidPolicy:
    """The policy in canonical form, or :class:`PolicyInvalid` saying what is wrong."""
    kind = check_condition_type(condition_type)
    return ValidPolicy(kind, check_condition_value(kind, condition_value), check_action(action))


def check_condition_value(kind: ConditionType, value: str) -> str:
    raw = clean_text(value, 400)
    checker = _CHECKERS[kind]
    return checker(raw)


def _bad_value(kind: ConditionType, value: str, expected: str) -> PolicyInvalid:
    return PolicyInvalid(
        "invalid_condition_value",
        f"'{_shown(value)}' is not a valid value for {kind.value}: expected {expected}.",
    )


def _check_domain(value: str) -> str:
    text = value.strip().lower().lstrip("@").rstrip(".")
    if text in (INTERNAL, EXTERNAL):
        return text
    try:
        ascii_domain = text.encode("idna").decode("ascii") if text else text
    except UnicodeError:
        ascii_domain = ""
    if not DOMAIN.match(ascii_domain):
        raise _bad_value(
            ConditionType.CALLER_DOMAIN, value, "a domain such as example.com, internal or external"
        )
    return text


def _check_email_value(value: str) -> str:
    try:
        return check_email(value).lower()
    except PolicyInvalid:
        raise _bad_value(
            ConditionType.CALLER_EMAIL, value, "an e-mail address such as alice@example.com"
        ) from None


def _check_trust_value(value: str) -> str:
    try:
        return check_trust_level(value).value
    except PolicyInvalid:
        levels = ", ".join(level.value for level in TrustLevel)
        raise _bad_value(ConditionType.CALLER_TRUST_LEVEL, value, f"one of {levels}") from None


def _check_duration(value: str) -> str:
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        raise _bad_value(ConditionType.DURATION_OVER, value, "whole minutes from 1 to 1440")
    minutes = int(text)
    if not 1 <= minutes <= MAX_DURATION_MINUTES:
        raise _bad_value(ConditionType.DURATION_OVER, value, "whole minutes from 1 to 1440")
    return str(minutes)


def _check_weekdays(value: str) -> str:
    parts = [p.strip().lower() for p in value.split(",")]
    days: set[str] = set()
    for part in parts:
        day = _WEEKDAY_NAMES.get(part)
        if day is None:
            raise _bad_value(
                ConditionType.WEEKDAY, value, "a comma-separated list of mon, tue, ..., sun"
            )
        days.add(day)
    return ",".join(day for day in WEEKDAYS if day in days)


def _parse_hhmm(text: str) -> int | None:
    """Minutes after midnight of ``HH:MM`` or ``H:MM`` (``24:00`` is 1440), or None."""
    try:
        return parse_hhmm(text.strip(), allow_24=True, one_digit_hour=True)
    except InvalidTimeOfDay:
        return None


def parse_hours(value: str) -> tuple[int, int]:
    """``HH:MM-HH:MM`` as minutes after midnight; an end <= start crosses midnight."""
    start_text, dash, end_text = value.partition("-")
    start = _parse_hhmm(start_text) if dash else None
    end = _parse_hhmm(end_text) if dash else None
    if start is None or end is None or start in (1440, end):
        raise _bad_value(
            ConditionType.OUTSIDE_HOURS,
            value,
            "local hours HH:MM-HH:MM such as 09:00-17:00 (start and end differ)",
        )
    return start, end


def _check_hours(value: str) -> str:
    start, end = parse_hours(value)
    return f"{format_hhmm(start)}-{format_hhmm(end)}"


_CHECKERS: Final = {
    ConditionType.CALLER_DOMAIN: _check_domain,
    ConditionType.CALLER_EMAIL: _check_email_value,
    ConditionType.CALLER_TRUST_LEVEL: _check_trust_value,
    ConditionType.DURATION_OVER: _check_duration,
    ConditionType.WEEKDAY: _check_weekdays,
    ConditionType.OUTSIDE_HOURS: _check_hours,
}


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BookingFacts:
    """What a policy may look at. ``start``/``end`` are aware datetimes."""

    attendee_email: str
    caller_trust_level: TrustLevel = TrustLevel.STANDARD  # standard for an unknown caller
    owner_email: str
    owner_timezone: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    action: PolicyAction
    policy_id: str | None
    policy_name: str | None
    reason: str

    @property
    def allowed(self) -> bool:
        return self.action is not PolicyAction.DENY


def evaluation_order(policies: Iterable[PolicyInfo]) -> list[PolicyInfo]:
    """Enabled policies, highest priority first; equal priorities oldest first."""
    enabled = (p for p in policies if p.enabled)
    return sorted(enabled, key=lambda p: (-p.priority, p.created_at, p.id))


def decide(policies: Iterable[PolicyInfo], booking: BookingFacts) -> Decision:
    if booking.caller_trust_level is TrustLevel.BLOCKED:
        return Decision(
            PolicyAction.DENY, None, None, "The caller is blocked from booking with this owner."
        )
    for policy in evaluation_order(policies):
        if matches(policy.condition_type, policy.condition_value, booking):
            return Decision(policy.action, policy.id, policy.name, _reason(policy))
    return Decision(PolicyAction.ALLOW, None, None, "No policy matched; bookings are allowed.")


def _reason(policy: PolicyInfo) -> str:
    if policy.action is PolicyAction.DENY:
        return f"Denied by policy '{policy.name}'."
    if policy.action is PolicyAction.REQUIRE_CONFIRMATION:
        return f"The owner must confirm this booking (policy '{policy.name}')."
    return f"Allowed by policy '{policy.name}'."


def matches(kind: ConditionType, value: str, booking: BookingFacts) -> bool:
    """Whether one condition holds for ``booking``; a value that cannot be read never holds."""
    try:
        canonical = check_condition_value(kind, value)
    except PolicyInvalid:
        return False
    attendee = normalise_email(booking.attendee_email)
    if kind is ConditionType.CALLER_DOMAIN:
        domain = email_domain(attendee)
        if canonical == INTERNAL:
            return bool(domain) and domain == email_domain(booking.owner_email)
        if canonical == EXTERNAL:
            return domain != email_domain(booking.owner_email)
        return domain == canonical
    if kind is ConditionType.CALLER_EMAIL:
        return attendee == canonical
    if kind is ConditionType.CALLER_TRUST_LEVEL:
        return booking.caller_trust_level.value == canonical
    start, end = _utc(booking.start), _utc(booking.end)
    if kind is ConditionType.DURATION_OVER:
        return end - start > timedelta(minutes=int(canonical))
    zone = owner_zone(booking.owner_timezone)
    if kind is ConditionType.WEEKDAY:
        day = WEEKDAYS[start.astimezone(zone).weekday()]
        return day in canonical.split(",")
    window_start, window_end = parse_hours(canonical)
    return not _inside_windows(start, end, window_start, window_end, zone)


def _utc(moment: datetime) -> datetime:
    """In UTC, so that arithmetic is in real time (a naive value is taken as UTC).

    Python subtracts and compares two datetimes sharing one tzinfo by wall clock, which
    is wrong across a DST change; in UTC it is exact.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def owner_zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _at(day: date, minutes: int, zone: tzinfo) -> datetime:
    """The instant of local ``day`` + ``minutes`` in ``zone`` (a DST gap moves it forward)."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _inside_windows(
    start: datetime, end: datetime, window_start: int, window_end: int, zone: tzinfo
) -> bool:
    """Whether [start, end) (in UTC) lies within the union of the daily local windows."""
    if end <= start:
        return True
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    spans: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        crosses = window_end <= window_start
        opens = _at(day, window_start, zone)
        closes = _at(day + timedelta(days=1) if crosses else day, window_end, zone)
        if closes > opens:
            spans.append((opens, closes))
        day += timedelta(days=1)
    covered, goal = start, end
    for opens, closes in sorted(spans):
        if opens > covered:
            break
        covered = max(covered, closes)
        if covered >= goal:
            return True
    return covered >= goal
