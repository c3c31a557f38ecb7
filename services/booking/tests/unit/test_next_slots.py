"""The next free slots a conflict offers: the same length, after the requested start, and
each one a slot availability shows and the slot check accepts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.domain.availability import Rules, check_slot, free_windows
from booking.domain.next_slots import next_slots

NEW_YORK = "America/New_York"
MONDAY = date(2026, 3, 16)  # the week after New York's spring forward
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def local(day: date, hhmm: str, tz: str = NEW_YORK) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=ZoneInfo(tz))


def printed(slots: list[tuple[datetime, datetime]]) -> list[tuple[str, str]]:
    return [(s.isoformat(), e.isoformat()) for s, e in slots]


def test_after_a_clash_the_next_slots_follow_it_with_the_same_length() -> None:
    rules = Rules(timezone=NEW_YORK, buffer_minutes=10)
    standup = (local(MONDAY, "14:00"), local(MONDAY, "14:30"))
    booked = (local(MONDAY, "15:40"), local(MONDAY, "16:40"))
    slots = next_slots(rules, local(MONDAY, "14:00"), 30, NEW_YORK, [standup, booked], NOW)
    # 14:40 after the standup and its buffer, 15:10-15:40 would touch the booking's buffer;
    # after 16:40 + 10 nothing of 30 minutes fits before 17:00: then Tuesday 09:00
    assert printed(slots) == [
        ("2026-03-16T14:40:00-04:00", "2026-03-16T15:10:00-04:00"),
        ("2026-03-17T09:00:00-04:00", "2026-03-17T09:30:00-04:00"),
        ("2026-03-17T09:30:00-04:00", "2026-03-17T10:00:00-04:00"),
    ]
    for start, end in slots:
        check_slot(rules, start, end, [standup, booked], NOW)
        windows = free_windows(rules, start.date(), NEW_YORK, 30, [standup, booked], NOW)
        assert any(a <= start and end <= b for a, b in windows)


def test_slots_skip_the_weekend_start_on_the_grid_and_stop_at_max_advance() -> None:
    friday = date(2026, 3, 20)
    rules = Rules(timezone=NEW_YORK, max_advance_days=20)  # until 2026-03-21 00:00 UTC
    busy = [(local(friday, "09:00"), local(friday, "16:53"))]
    slots = next_slots(rules, local(friday, "09:00"), 45, NEW_YORK, busy, NOW)
    assert slots == []  # 16:55-17:00 too short; the weekend is not worked; past max advance
    later = Rules(timezone=NEW_YORK)
    slots = next_slots(later, local(friday, "09:00"), 45, NEW_YORK, busy, NOW, count=2)
    assert printed(slots) == [
        ("2026-03-23T09:00:00-04:00", "2026-03-23T09:45:00-04:00"),
        ("2026-03-23T09:45:00-04:00", "2026-03-23T10:30:00-04:00"),
    ]


def test_slots_respect_min_notice_and_print_in_the_zone_asked() -> None:
    rules = Rules(timezone=NEW_YORK, min_notice_hours=2)
    now = local(MONDAY, "10:07")
    slots = next_slots(rules, local(MONDAY, "10:00"), 60, "Europe/Paris", [], now, count=1)
    # earliest 12:07 New York, up to the grid: 12:10, printed in Paris (+01:00 until 29 March)
    assert printed(slots) == [("2026-03-16T17:10:00+01:00", "2026-03-16T18:10:00+01:00")]
    check_slot(rules, slots[0][0], slots[0][1], [], now)
    assert slots[0][0] - now >= timedelta(hours=2)
