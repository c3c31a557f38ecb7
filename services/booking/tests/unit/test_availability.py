"""The availability engine on concrete cases, DST days checked to the minute."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from booking.domain.availability import (
    DEFAULT_WORKING_HOURS,
    Rules,
    SlotRefused,
    check_slot,
    free_intervals,
    free_windows,
    local_day_bounds,
    merge,
    working_intervals,
)

NEW_YORK = "America/New_York"
MONDAY = date(2026, 3, 16)
EARLY_MARCH = datetime(2026, 3, 1, tzinfo=UTC)  # before the March days used, within max advance
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def utc(day: date, hhmm: str, plus_days: int = 0) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        days=plus_days, hours=hours, minutes=minutes
    )


def as_utc(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    return [(start.astimezone(UTC), end.astimezone(UTC)) for start, end in windows]


def printed(windows: list[tuple[datetime, datetime]]) -> list[tuple[str, str]]:
    return [(start.isoformat(), end.isoformat()) for start, end in windows]


def refusal(
    rules: Rules,
    start: datetime,
    end: datetime,
    busy: Sequence[tuple[datetime, datetime]] = (),
    now: datetime = EARLY_MARCH,
) -> str:
    with pytest.raises(SlotRefused) as caught:
        check_slot(rules, start, end, busy, now)
    assert str(caught.value)  # a sentence for people beside the code
    return caught.value.code


# --- default working hours, buffers, notice, advance -------------------------------------------


def test_default_working_hours_are_monday_to_friday_nine_to_five() -> None:
    rules = Rules(timezone="UTC")
    assert rules.working_hours == DEFAULT_WORKING_HOURS
    for offset in range(5):
        day = MONDAY + timedelta(days=offset)
        windows = free_windows(rules, day, "UTC", 30, [], EARLY_MARCH)
        assert as_utc(windows) == [(utc(day, "09:00"), utc(day, "17:00"))]
    assert free_windows(rules, MONDAY + timedelta(days=5), "UTC", 30, [], EARLY_MARCH) == []
    assert free_windows(rules, MONDAY + timedelta(days=6), "UTC", 30, [], EARLY_MARCH) == []


def test_buffers_keep_time_free_on_both_sides_of_busy_time() -> None:
    rules = Rules(timezone="UTC", buffer_minutes=15)
    busy = [(utc(MONDAY, "12:00"), utc(MONDAY, "13:00"))]
    windows = free_windows(rules, MONDAY, "UTC", 30, busy, EARLY_MARCH)
    assert as_utc(windows) == [
        (utc(MONDAY, "09:00"), utc(MONDAY, "11:45")),
        (utc(MONDAY, "13:15"), utc(MONDAY, "17:00")),
    ]
    # busy time before working hours still reaches into them through its buffer
    early = [(utc(MONDAY, "08:00"), utc(MONDAY, "08:50"))]
    windows = free_windows(rules, MONDAY, "UTC", 30, early, EARLY_MARCH)
    assert as_utc(windows) == [(utc(MONDAY, "09:05"), utc(MONDAY, "17:00"))]


def test_buffer_boundaries_agree_with_check_slot() -> None:
    rules = Rules(timezone="UTC", buffer_minutes=15)
    busy = [(utc(MONDAY, "12:00"), utc(MONDAY, "13:00"))]
    check_slot(rules, utc(MONDAY, "11:15"), utc(MONDAY, "11:45"), busy, EARLY_MARCH)
    check_slot(rules, utc(MONDAY, "13:15"), utc(MONDAY, "13:45"), busy, EARLY_MARCH)
    assert refusal(rules, utc(MONDAY, "11:16"), utc(MONDAY, "11:46"), busy) == "slot_unavailable"
    assert refusal(rules, utc(MONDAY, "13:14"), utc(MONDAY, "13:44"), busy) == "slot_unavailable"


def test_adjacent_slots_without_buffer_are_both_bookable() -> None:
    rules = Rules(timezone="UTC")
    busy = [(utc(MONDAY, "10:00"), utc(MONDAY, "10:30"))]
    check_slot(rules, utc(MONDAY, "09:30"), utc(MONDAY, "10:00"), busy, EARLY_MARCH)
    check_slot(rules, utc(MONDAY, "10:30"), utc(MONDAY, "11:00"), busy, EARLY_MARCH)
    assert refusal(rules, utc(MONDAY, "10:29"), utc(MONDAY, "10:59"), busy) == "slot_unavailable"


def test_windows_shorter_than_the_duration_are_left_out() -> None:
    rules = Rules(timezone="UTC")
    busy = [(utc(MONDAY, "10:00"), utc(MONDAY, "16:30"))]
    windows = free_windows(rules, MONDAY, "UTC", 60, busy, EARLY_MARCH)
    assert as_utc(windows) == [(utc(MONDAY, "09:00"), utc(MONDAY, "10:00"))]
    windows = free_windows(rules, MONDAY, "UTC", 30, busy, EARLY_MARCH)
    assert len(windows) == 2


def test_busy_intervals_in_any_zone_and_overlapping_are_merged() -> None:
    rules = Rules(timezone="UTC")
    new_york = ZoneInfo(NEW_YORK)
    busy = [
        (
            datetime(2026, 3, 16, 6, 0, tzinfo=new_york),
            datetime(2026, 3, 16, 7, 0, tzinfo=new_york),
        ),
        (utc(MONDAY, "10:30"), utc(MONDAY, "12:00")),
        (utc(MONDAY, "12:00"), utc(MONDAY, "12:00")),  # empty: ignored
    ]
    windows = free_windows(rules, MONDAY, "UTC", 30, busy, EARLY_MARCH)
    assert as_utc(windows) == [
        (utc(MONDAY, "09:00"), utc(MONDAY, "10:00")),
        (utc(MONDAY, "12:00"), utc(MONDAY, "17:00")),
    ]


def test_min_notice_cuts_the_morning() -> None:
    rules = Rules(timezone="UTC", min_notice_hours=2)
    now = utc(MONDAY, "08:30")
    windows = free_windows(rules, MONDAY, "UTC", 30, [], now)
    assert as_utc(windows) == [(utc(MONDAY, "10:30"), utc(MONDAY, "17:00"))]
    assert refusal(rules, utc(MONDAY, "10:00"), utc(MONDAY, "10:30"), now=now) == "too_soon"
    check_slot(rules, utc(MONDAY, "10:30"), utc(MONDAY, "11:00"), [], now)
    # notice reaching past the working day leaves nothing that day
    late = utc(MONDAY, "15:30")
    assert free_windows(rules, MONDAY, "UTC", 30, [], late) == []
    assert refusal(rules, utc(MONDAY, "16:00"), utc(MONDAY, "16:30"), now=late) == "too_soon"


def test_the_past_is_never_free() -> None:
    rules = Rules(timezone="UTC")
    now = utc(MONDAY, "12:10")
    windows = free_windows(rules, MONDAY, "UTC", 30, [], now)
    assert as_utc(windows) == [(utc(MONDAY, "12:10"), utc(MONDAY, "17:00"))]
    assert free_windows(rules, MONDAY - timedelta(days=7), "UTC", 30, [], now) == []


def test_max_advance_cuts_the_far_future() -> None:
    rules = Rules(timezone="UTC", max_advance_days=1)
    now = utc(MONDAY, "12:00")
    tuesday = MONDAY + timedelta(days=1)
    windows = free_windows(rules, tuesday, "UTC", 30, [], now)
    assert as_utc(windows) == [(utc(tuesday, "09:00"), utc(tuesday, "12:00"))]
    assert free_windows(rules, tuesday + timedelta(days=1), "UTC", 30, [], now) == []
    check_slot(rules, utc(tuesday, "11:30"), utc(tuesday, "12:00"), [], now)
    assert refusal(rules, utc(tuesday, "11:31"), utc(tuesday, "12:01"), now=now) == "too_far"


def test_default_max_advance_is_sixty_days() -> None:
    rules = Rules(timezone="UTC")
    now = utc(MONDAY, "12:00")
    day_59 = MONDAY + timedelta(days=59)  # a Friday
    day_60 = MONDAY + timedelta(days=60)
    assert as_utc(free_windows(rules, day_59, "UTC", 30, [], now)) == [
        (utc(day_59, "09:00"), utc(day_59, "17:00"))
    ]
    assert free_windows(rules, day_60 + timedelta(days=3), "UTC", 30, [], now) == []


# --- shapes of working hours ---------------------------------------------------------------------


def test_working_hours_crossing_midnight() -> None:
    rules = Rules(timezone="UTC", working_hours={"mon": [("22:00", "02:00")]})
    tuesday = MONDAY + timedelta(days=1)
    assert as_utc(free_windows(rules, MONDAY, "UTC", 30, [], EARLY_MARCH)) == [
        (utc(MONDAY, "22:00"), utc(tuesday, "00:00"))
    ]
    assert as_utc(free_windows(rules, tuesday, "UTC", 30, [], EARLY_MARCH)) == [
        (utc(tuesday, "00:00"), utc(tuesday, "02:00"))
    ]
    # Sunday night is not worked, so Monday starts free of work
    assert free_windows(rules, MONDAY - timedelta(days=1), "UTC", 30, [], EARLY_MARCH) == []
    assert working_intervals(rules, utc(MONDAY, "00:00"), utc(MONDAY, "00:00", 3)) == [
        (utc(MONDAY, "22:00"), utc(tuesday, "02:00"))
    ]


def test_a_slot_across_local_midnight_is_accepted_though_each_day_cuts_its_windows() -> None:
    """Documented difference: ``free_windows`` never leaves the requested day, so a free stretch
    across midnight is shown as two windows (or not at all, when each half is shorter than the
    duration), while ``check_slot`` accepts the slot that spans it."""
    rules = Rules(timezone="UTC", working_hours={"mon": [("23:00", "01:00")]})
    tuesday = MONDAY + timedelta(days=1)
    slot = (utc(MONDAY, "23:00"), utc(tuesday, "01:00"))
    check_slot(rules, *slot, [], EARLY_MARCH)
    assert free_windows(rules, MONDAY, "UTC", 120, [], EARLY_MARCH) == []
    assert free_windows(rules, tuesday, "UTC", 120, [], EARLY_MARCH) == []
    assert as_utc(free_windows(rules, MONDAY, "UTC", 60, [], EARLY_MARCH)) == [
        (utc(MONDAY, "23:00"), utc(tuesday, "00:00"))
    ]
    assert as_utc(free_windows(rules, tuesday, "UTC", 60, [], EARLY_MARCH)) == [
        (utc(tuesday, "00:00"), utc(tuesday, "01:00"))
    ]
    # ... and is refused as soon as busy time touches either side
    busy = [(utc(tuesday, "00:30"), utc(tuesday, "00:45"))]
    assert refusal(rules, *slot, busy) == "slot_unavailable"
    # the same stretch asked in a zone where it does not cross midnight is one window
    windows = free_windows(rules, MONDAY, "America/Sao_Paulo", 120, [], EARLY_MARCH)  # -03:00
    assert as_utc(windows) == [slot]


def test_a_midnight_crossing_interval_joins_the_next_days_interval() -> None:
    rules = Rules(
        timezone="UTC",
        working_hours={"mon": [("20:00", "24:00")], "tue": [("00:00", "03:00")]},
    )
    tuesday = MONDAY + timedelta(days=1)
    assert working_intervals(rules, utc(MONDAY, "00:00"), utc(tuesday, "23:59")) == [
        (utc(MONDAY, "20:00"), utc(tuesday, "03:00"))
    ]
    check_slot(rules, utc(MONDAY, "23:00"), utc(tuesday, "01:00"), [], EARLY_MARCH)


def test_several_intervals_per_day_overlapping_ones_merged() -> None:
    rules = Rules(
        timezone="UTC",
        working_hours={"mon": [("09:00", "12:00"), ("13:00", "17:00"), ("16:00", "18:00")]},
    )
    windows = free_windows(rules, MONDAY, "UTC", 30, [], EARLY_MARCH)
    assert as_utc(windows) == [
        (utc(MONDAY, "09:00"), utc(MONDAY, "12:00")),
        (utc(MONDAY, "13:00"), utc(MONDAY, "18:00")),
    ]
    check_slot(rules, utc(MONDAY, "16:30"), utc(MONDAY, "17:30"), [], EARLY_MARCH)
    code = refusal(rules, utc(MONDAY, "11:30"), utc(MONDAY, "13:30"))
    assert code == "outside_working_hours"


def test_touching_intervals_form_one_window() -> None:
    rules = Rules(timezone="UTC", working_hours={"mon": [("09:00", "12:00"), ("12:00", "14:00")]})
    windows = free_windows(rules, MONDAY, "UTC", 300, [], EARLY_MARCH)
    assert as_utc(windows) == [(utc(MONDAY, "09:00"), utc(MONDAY, "14:00"))]
    check_slot(rules, utc(MONDAY, "11:30"), utc(MONDAY, "12:30"), [], EARLY_MARCH)


def test_a_whole_day_interval() -> None:
    rules = Rules(timezone="UTC", working_hours={"mon": [("00:00", "00:00")]})
    assert as_utc(free_windows(rules, MONDAY, "UTC", 30, [], EARLY_MARCH)) == [
        (utc(MONDAY, "00:00"), utc(MONDAY, "00:00", 1))
    ]


# --- DST, to the minute --------------------------------------------------------------------------


def test_new_york_spring_forward_day_has_23_hours() -> None:
    rules = Rules(timezone=NEW_YORK, working_hours={day: [("00:00", "24:00")] for day in EVERY_DAY})
    windows = free_windows(rules, date(2026, 3, 8), NEW_YORK, 30, [], EARLY_MARCH)
    assert printed(windows) == [("2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00")]
    (start, end), *_ = as_utc(windows)
    assert (start, end) == (
        datetime(2026, 3, 8, 5, tzinfo=UTC),
        datetime(2026, 3, 9, 4, tzinfo=UTC),
    )
    assert end - start == timedelta(hours=23)


def test_new_york_fall_back_day_has_25_hours() -> None:
    rules = Rules(timezone=NEW_YORK, working_hours={day: [("00:00", "24:00")] for day in EVERY_DAY})
    windows = free_windows(rules, date(2026, 11, 1), NEW_YORK, 30, [], OCTOBER)
    assert printed(windows) == [("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00")]
    (start, end), *_ = as_utc(windows)
    assert (start, end) == (
        datetime(2026, 11, 1, 4, tzinfo=UTC),
        datetime(2026, 11, 2, 5, tzinfo=UTC),
    )
    assert end - start == timedelta(hours=25)
    assert local_day_bounds(date(2026, 11, 1), NEW_YORK) == (start, end)


def test_new_york_one_to_four_on_the_spring_forward_day_is_two_real_hours() -> None:
    rules = Rules(timezone=NEW_YORK, working_hours={"sun": [("01:00", "04:00")]})
    windows = free_windows(rules, date(2026, 3, 8), NEW_YORK, 30, [], EARLY_MARCH)
    assert as_utc(windows) == [
        (datetime(2026, 3, 8, 6, tzinfo=UTC), datetime(2026, 3, 8, 8, tzinfo=UTC))
    ]
    assert printed(windows) == [("2026-03-08T01:00:00-05:00", "2026-03-08T04:00:00-04:00")]
    # two hours fit, three do not
    assert free_windows(rules, date(2026, 3, 8), NEW_YORK, 120, [], EARLY_MARCH) == windows
    assert free_windows(rules, date(2026, 3, 8), NEW_YORK, 121, [], EARLY_MARCH) == []


def test_new_york_one_to_four_on_the_fall_back_day_is_four_real_hours() -> None:
    rules = Rules(timezone=NEW_YORK, working_hours={"sun": [("01:00", "04:00")]})
    windows = free_windows(rules, date(2026, 11, 1), NEW_YORK, 240, [], OCTOBER)
    assert as_utc(windows) == [
        (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 9, tzinfo=UTC))
    ]
    assert printed(windows) == [("2026-11-01T01:00:00-04:00", "2026-11-01T04:00:00-05:00")]


def test_the_repeated_hour_prints_both_offsets() -> None:
    rules = Rules(timezone=NEW_YORK, working_hours={"sun": [("01:00", "04:00")]})
    # busy during the second 01:30-02:00 (EST), that is 06:30Z-07:00Z
    busy = [(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), datetime(2026, 11, 1, 7, tzinfo=UTC))]
    windows = free_windows(rules, date(2026, 11, 1), NEW_YORK, 30, busy, OCTOBER)
    assert printed(windows) == [
        ("2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-05:00"),
        ("2026-11-01T02:00:00-05:00", "2026-11-01T04:00:00-05:00"),
    ]
    for start, end in windows:  # what is printed reads back as the same instant
        assert datetime.fromisoformat(start.isoformat()) == start.astimezone(UTC)
        assert datetime.fromisoformat(end.isoformat()) == end.astimezone(UTC)


def test_skipped_and_repeated_wall_times_in_working_hours() -> None:
    # 02:30 does not exist on 2026-03-08: it moves forward to 03:00 EDT (07:00Z)
    rules = Rules(timezone=NEW_YORK, working_hours={"sun": [("02:30", "03:30")]})
    windows = free_windows(rules, date(2026, 3, 8), NEW_YORK, 30, [], EARLY_MARCH)
    assert as_utc(windows) == [
        (datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    ]
    # wholly inside the gap: nothing at all
    rules = Rules(timezone=NEW_YORK, working_hours={"sun": [("02:00", "02:45")]})
    assert free_windows(rules, date(2026, 3, 8), NEW_YORK, 5, [], EARLY_MARCH) == []
    # 01:30 happens twice on 2026-11-01: both ends take the first (EDT) occurrence
    rules = Rules(timezone=NEW_YORK, working_hours={"sun": [("01:15", "01:45")]})
    windows = free_windows(rules, date(2026, 11, 1), NEW_YORK, 30, [], OCTOBER)
    assert printed(windows) == [("2026-11-01T01:15:00-04:00", "2026-11-01T01:45:00-04:00")]


def test_a_slot_after_the_spring_change_shows_minus_four_hours() -> None:
    rules = Rules(timezone=NEW_YORK)  # Mon-Fri 09:00-17:00 New York time
    tuesday = date(2026, 3, 10)
    windows = free_windows(rules, tuesday, NEW_YORK, 30, [], EARLY_MARCH)
    assert printed(windows) == [("2026-03-10T09:00:00-04:00", "2026-03-10T17:00:00-04:00")]
    start = datetime(2026, 3, 10, 10, tzinfo=ZoneInfo(NEW_YORK))
    assert start.astimezone(UTC) == datetime(2026, 3, 10, 14, tzinfo=UTC)
    assert start.isoformat() == "2026-03-10T10:00:00-04:00"
    check_slot(rules, start, start + timedelta(minutes=30), [], EARLY_MARCH)
    check_slot(
        rules,
        datetime.fromisoformat("2026-03-10T14:00:00Z"),
        datetime.fromisoformat("2026-03-10T14:30:00Z"),
        [],
        EARLY_MARCH,
    )
    # the week before, the same wall time is an hour later in UTC
    before = free_windows(rules, date(2026, 3, 6), NEW_YORK, 30, [], EARLY_MARCH)
    assert printed(before) == [("2026-03-06T09:00:00-05:00", "2026-03-06T17:00:00-05:00")]


def test_lord_howe_half_hour_dst_days() -> None:
    zone = "Australia/Lord_Howe"
    rules = Rules(timezone=zone, working_hours={day: [("00:00", "24:00")] for day in EVERY_DAY})
    spring = free_windows(rules, date(2026, 10, 4), zone, 30, [], OCTOBER)
    (start, end), *_ = as_utc(spring)
    assert end - start == timedelta(hours=23, minutes=30)
    autumn = free_windows(rules, date(2026, 4, 5), zone, 30, [], EARLY_MARCH)
    (start, end), *_ = as_utc(autumn)
    assert end - start == timedelta(hours=24, minutes=30)
    # 02:00-02:30 does not exist on 2026-10-04: 02:10 moves to 02:30 (+11:00)
    rules = Rules(timezone=zone, working_hours={"sun": [("02:10", "03:00")]})
    windows = free_windows(rules, date(2026, 10, 4), zone, 30, [], OCTOBER)
    assert printed(windows) == [("2026-10-04T02:30:00+11:00", "2026-10-04T03:00:00+11:00")]


# --- the requested zone --------------------------------------------------------------------------


def test_asking_in_another_zone_returns_the_same_instants() -> None:
    owner = Rules(timezone="Europe/Berlin")  # Mon-Fri 09:00-17:00 Berlin time
    los_angeles = "America/Los_Angeles"
    busy = [(datetime(2026, 6, 16, 10, tzinfo=UTC), datetime(2026, 6, 16, 11, tzinfo=UTC))]
    now = datetime(2026, 6, 1, tzinfo=UTC)
    days = [date(2026, 6, 14) + timedelta(days=n) for n in range(8)]
    in_berlin = [
        w for day in days for w in free_windows(owner, day, "Europe/Berlin", 30, busy, now)
    ]
    in_la = [w for day in days for w in free_windows(owner, day, los_angeles, 30, busy, now)]
    assert as_utc(in_la) == as_utc(in_berlin)
    assert len(in_la) == 6  # five working days, one of them split by the busy hour
    assert printed(free_windows(owner, date(2026, 6, 16), los_angeles, 30, busy, now)) == [
        ("2026-06-16T00:00:00-07:00", "2026-06-16T03:00:00-07:00"),
        ("2026-06-16T04:00:00-07:00", "2026-06-16T08:00:00-07:00"),
    ]
    # Saturday in Los Angeles (07:00Z to 07:00Z) holds none of Berlin's working week
    assert free_windows(owner, date(2026, 6, 20), los_angeles, 30, busy, now) == []


def test_a_day_in_a_far_zone_spans_two_owner_days() -> None:
    owner = Rules(
        timezone="UTC", working_hours={"mon": [("20:00", "23:00")], "tue": [("01:00", "03:00")]}
    )
    tokyo = "Asia/Tokyo"  # +09:00: Tuesday in Tokyo is Monday 15:00Z - Tuesday 15:00Z
    windows = free_windows(owner, MONDAY + timedelta(days=1), tokyo, 30, [], EARLY_MARCH)
    assert printed(windows) == [
        ("2026-03-17T05:00:00+09:00", "2026-03-17T08:00:00+09:00"),
        ("2026-03-17T10:00:00+09:00", "2026-03-17T12:00:00+09:00"),
    ]


# --- check_slot refusals ------------------------------------------------------------------------


def test_check_slot_refusal_codes() -> None:
    rules = Rules(timezone="UTC", min_notice_hours=1, max_advance_days=30)
    now = utc(MONDAY, "08:00")
    ok = (utc(MONDAY, "10:00"), utc(MONDAY, "10:30"))
    check_slot(rules, *ok, [], now)
    assert refusal(rules, ok[1], ok[0], now=now) == "invalid_range"
    assert refusal(rules, ok[0], ok[0], now=now) == "invalid_range"
    naive = ok[0].replace(tzinfo=None)
    assert refusal(rules, naive, naive + timedelta(minutes=30), now=now) == "invalid_range"
    assert refusal(rules, ok[0], ok[0] + timedelta(minutes=4), now=now) == "invalid_length"
    assert refusal(rules, ok[0], ok[0] + timedelta(minutes=721), now=now) == "invalid_length"
    assert refusal(rules, ok[0], ok[0] + timedelta(minutes=30, seconds=1), now=now) == (
        "invalid_length"
    )
    all_day = Rules(timezone="UTC", working_hours={"mon": [("00:00", "24:00")]})
    check_slot(all_day, utc(MONDAY, "09:00"), utc(MONDAY, "21:00"), [], EARLY_MARCH)  # 720 min
    check_slot(all_day, utc(MONDAY, "09:00"), utc(MONDAY, "09:05"), [], EARLY_MARCH)  # 5 min
    assert refusal(rules, utc(MONDAY, "08:30"), utc(MONDAY, "09:30"), now=now) == "too_soon"
    far = MONDAY + timedelta(days=31)
    assert refusal(rules, utc(far, "10:00"), utc(far, "10:30"), now=now) == "too_far"
    assert refusal(rules, utc(MONDAY, "16:30"), utc(MONDAY, "17:30"), now=now) == (
        "outside_working_hours"
    )
    saturday = MONDAY + timedelta(days=5)
    assert refusal(rules, utc(saturday, "10:00"), utc(saturday, "10:30"), now=now) == (
        "outside_working_hours"
    )
    busy = [(utc(MONDAY, "10:15"), utc(MONDAY, "10:20"))]
    assert refusal(rules, *ok, busy, now) == "slot_unavailable"


def test_check_slot_names_the_first_reason() -> None:
    rules = Rules(timezone="UTC", min_notice_hours=24)
    now = utc(MONDAY, "08:00")
    # too soon and outside working hours and busy: too soon wins
    busy = [(utc(MONDAY, "18:00"), utc(MONDAY, "19:00"))]
    assert refusal(rules, utc(MONDAY, "18:00"), utc(MONDAY, "18:30"), busy, now) == "too_soon"


def test_check_slot_accepts_any_zone_and_fixed_offsets() -> None:
    rules = Rules(timezone="UTC")
    plus_two = datetime.fromisoformat("2026-03-16T11:00:00+02:00")  # 09:00Z
    check_slot(rules, plus_two, plus_two + timedelta(minutes=45), [], EARLY_MARCH)


# --- the edges of the calendar ------------------------------------------------------------------

PLUS_14 = timezone(timedelta(hours=14))
MINUS_12 = timezone(timedelta(hours=-12))


@pytest.mark.parametrize(
    ("day", "tz"),
    [
        (date(9999, 12, 31), "UTC"),
        (date(9999, 12, 31), "Pacific/Kiritimati"),
        (date(1, 1, 1), "Pacific/Kiritimati"),  # east of UTC: midnight is in year 0
        (date(1, 1, 1), "UTC"),
        (date(1969, 12, 31), "UTC"),
    ],
)
def test_days_at_the_calendars_edges_are_refused_not_overflowed(day: date, tz: str) -> None:
    rules = Rules(timezone="Etc/GMT+12", working_hours={d: [("00:00", "24:00")] for d in EVERY_DAY})
    with pytest.raises(SlotRefused) as caught:
        free_windows(rules, day, tz, 30, [], EARLY_MARCH)
    assert caught.value.code == "date_out_of_range"
    with pytest.raises(SlotRefused):
        local_day_bounds(day, tz)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
        (
            datetime(9999, 12, 31, 23, 0, tzinfo=MINUS_12),
            datetime(9999, 12, 31, 23, 30, tzinfo=MINUS_12),
        ),
        (datetime(1, 1, 1, 0, 0, tzinfo=PLUS_14), datetime(1, 1, 1, 0, 30, tzinfo=PLUS_14)),
        (datetime(1, 1, 1, 0, 0, tzinfo=UTC), datetime(1, 1, 1, 0, 30, tzinfo=UTC)),
        (datetime(2026, 3, 16, 10, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_slots_at_the_calendars_edges_are_refused_not_overflowed(
    start: datetime, end: datetime
) -> None:
    rules = Rules(timezone="Pacific/Kiritimati", buffer_minutes=240, max_advance_days=365)
    busy = [(datetime(9999, 12, 31, 22, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC))]
    assert refusal(rules, start, end, busy) == "date_out_of_range"


def test_the_last_day_of_the_calendar_still_computes() -> None:
    whole_days = {d: [("00:00", "24:00")] for d in EVERY_DAY}
    rules = Rules(timezone="Etc/GMT-14", working_hours=whole_days, buffer_minutes=240)
    for tz in ("Etc/GMT+12", "Etc/GMT-14"):
        assert free_windows(rules, date(9998, 12, 31), tz, 30, [], EARLY_MARCH) == []
        assert free_windows(rules, date(1970, 1, 1), tz, 30, [], EARLY_MARCH) == []


# --- inputs refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timezone": "Mars/Olympus"},
        {"timezone": "../etc/passwd"},
        {"timezone": "UTC", "working_hours": {"monday": [("09:00", "17:00")]}},
        {"timezone": "UTC", "working_hours": {"mon": [("9:00", "17:00")]}},
        {"timezone": "UTC", "working_hours": {"mon": [("09:00", "25:00")]}},
        {"timezone": "UTC", "working_hours": {"mon": [("09:00", "17:00\n")]}},
        {"timezone": "UTC", "working_hours": {"mon": [("09:00", "24:30")]}},
        {"timezone": "UTC", "working_hours": {"mon": [("24:00", "02:00")]}},
        {"timezone": "UTC", "buffer_minutes": -5},
        {"timezone": "UTC", "min_notice_hours": -1},
        {"timezone": "UTC", "max_advance_days": -1},
    ],
)
def test_rules_refuse_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Rules(**kwargs)  # type: ignore[arg-type]


def test_free_windows_refuses_bad_arguments() -> None:
    rules = Rules(timezone="UTC")
    with pytest.raises(ValueError):
        free_windows(rules, MONDAY, "Nowhere/City", 30, [], EARLY_MARCH)
    with pytest.raises(ValueError):
        free_windows(rules, MONDAY, "UTC", 0, [], EARLY_MARCH)
    with pytest.raises(ValueError):
        free_windows(rules, MONDAY, "UTC", 30, [], EARLY_MARCH.replace(tzinfo=None))
    naive_busy = [(datetime(2026, 3, 16, 10), datetime(2026, 3, 16, 11))]
    with pytest.raises(ValueError):
        free_windows(rules, MONDAY, "UTC", 30, naive_busy, EARLY_MARCH)


# --- helpers --------------------------------------------------------------------------------------


def test_merge_sorts_joins_touching_and_drops_empty() -> None:
    a, b, c, d = (utc(MONDAY, f"{hour:02d}:00") for hour in (9, 10, 11, 12))
    berlin = ZoneInfo("Europe/Berlin")
    assert merge([(c, d), (a, b), (b, c), (d, d), (d, c)]) == [(a, d)]
    assert merge([(c.astimezone(berlin), d.astimezone(berlin)), (a, b)]) == [(a, b), (c, d)]
    assert merge([]) == []


def test_free_intervals_is_the_unfiltered_free_time() -> None:
    rules = Rules(timezone="UTC", buffer_minutes=10)
    busy = [(utc(MONDAY, "09:30"), utc(MONDAY, "16:55"))]
    assert free_intervals(
        rules, utc(MONDAY, "00:00"), utc(MONDAY, "00:00", 1), busy, EARLY_MARCH
    ) == [(utc(MONDAY, "09:00"), utc(MONDAY, "09:20"))]
