"""Identity's rules: slugs and settings values. Pure functions, no I/O.

E-mail addresses, times of day and weekdays follow the shared rules of
:mod:`contracts.formats`; text is cleaned by :mod:`contracts.text`.
"""

from __future__ import annotations

import itertools
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from contracts.formats import MINUTES_PER_DAY, WEEKDAYS, InvalidValue, parse_hhmm
from contracts.identity import UserType, WorkingHours, WorkingInterval
from contracts.text import clean_text, shown


class RuleViolation(InvalidValue):
    """A value identity's rules refuse: ``code`` for machines, the message a sentence safe
    to show (the shared rules' :class:`~contracts.formats.InvalidValue`, which the service
    layer answers the same way)."""


SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
RESERVED_SLUGS = frozenset(
    {
        "api", "admin", "public", "www", "app", "dashboard", "docs", "help", "support",
        "status", "health", "ready", "resolve", "login", "logout", "signup", "signin",
        "settings", "billing", "account", "static", "assets", "webhooks", "openapi",
        "cortex", "root", "system", "null", "undefined", "about", "book", "booking",
        "availability", "calendar", "calendars", "mail", "email", "security", "legal",
    }
)  # fmt: skip
DEFAULT_WORKING_HOURS: WorkingHours = {
    day: [WorkingInterval(start="09:00", end="17:00")] for day in WEEKDAYS[:5]
}
MAX_DISPLAY_NAME = 200


def clean_display_name(value: str) -> str:
    """A name as it is stored: cleaned, at most 200 characters (empty when nothing visible
    is left)."""
    return clean_text(value, MAX_DISPLAY_NAME)


def first_display_name(value: str, email: str) -> str:
    """A new tenant's name: the one given, else the local part of its e-mail address."""
    return clean_display_name(value) or email.split("@", maxsplit=1)[0]


def check_display_name(value: str) -> str:
    """A name a tenant sets: it must keep a visible character once cleaned."""
    name = clean_display_name(value)
    if not name:
        raise RuleViolation("invalid_display_name", "display_name cannot be empty.")
    return name


def check_slug(value: str) -> str:
    slug = value.strip()
    if not SLUG.match(slug) or "--" in slug:
        raise RuleViolation(
            "invalid_slug",
            "A slug is 3 to 63 characters of lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit.",
        )
    if slug in RESERVED_SLUGS:
        raise RuleViolation("reserved_slug", f"The slug '{slug}' is reserved.")
    return slug


def check_timezone(value: str) -> str:
    name = value.strip()
    if name not in _timezones():
        raise RuleViolation("invalid_timezone", f"'{shown(value)}' is not an IANA time zone.")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuleViolation("invalid_timezone", f"'{name}' is not an IANA time zone.") from exc
    return name


_ZONES: frozenset[str] | None = None


def _timezones() -> frozenset[str]:
    global _ZONES  # noqa: PLW0603 (computed once, read-only after)
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def check_user_type(value: str) -> UserType:
    try:
        return UserType(value)
    except ValueError as exc:
        raise RuleViolation(
            "invalid_user_type", "user_type must be 'individual' or 'developer'."
        ) from exc


def check_working_hours(value: dict[str, list[WorkingInterval]]) -> WorkingHours:
    """Weekday keys mon..sun; intervals may cross midnight; none may overlap in the week."""
    unknown = sorted(set(value) - set(WEEKDAYS))
    if unknown:
        raise RuleViolation(
            "invalid_working_hours",
            f"Unknown weekday {unknown[0]!r}: use mon, tue, wed, thu, fri, sat, sun.",
        )
    week = 7 * MINUTES_PER_DAY
    spans: list[tuple[int, int, str]] = []
    for day_index, day in enumerate(WEEKDAYS):
        for interval in value.get(day, []):
            start = parse_hhmm(interval.start, allow_24=True)
            end = parse_hhmm(interval.end, allow_24=True)
            if start == MINUTES_PER_DAY:
                raise RuleViolation("invalid_working_hours", f"{day}: a start cannot be 24:00.")
            if end == start:
                raise RuleViolation(
                    "invalid_working_hours", f"{day}: {interval.start}-{interval.end} is empty."
                )
            length = end - start if end > start else end + MINUTES_PER_DAY - start
            begin = day_index * MINUTES_PER_DAY + start
            spans.append((begin, begin + length, f"{day} {interval.start}-{interval.end}"))
    spans.sort()
    # compare each with the next, and the last (possibly wrapping past Sunday) with the first
    for (_a_start, a_end, a_name), (b_start, _b_end, b_name) in itertools.pairwise(spans):
        if b_start < a_end:
            raise RuleViolation("invalid_working_hours", f"{a_name} overlaps {b_name}.")
    if len(spans) > 1 and spans[-1][1] > week and spans[-1][1] - week > spans[0][0]:
        raise RuleViolation("invalid_working_hours", f"{spans[-1][2]} overlaps {spans[0][2]}.")
    return {day: list(value[day]) for day in WEEKDAYS if value.get(day)}
