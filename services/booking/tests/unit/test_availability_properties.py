"""Properties of the availability engine over random rules, zones, DST days and busy time.

The oracle is a brute force independent of the engine: a minute-by-minute classification of the
day, with local wall times mapped to instants by scanning the clock ("the first instant at which
the owner's clock shows that time or later", which is the documented rule for skipped and
repeated wall times). Every input is on whole minutes, as are these zones' offsets and
transitions, so the minute grid is exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.domain.availability import (
    MAX_SLOT_MINUTES,
    MIN_SLOT_MINUTES,
    Rules,
    SlotRefused,
    check_slot,
    free_windows,
    local_day_bounds,
    merge,
)

Interval = tuple[datetime, datetime]
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONES = ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")
TRANSITIONS = (
    ("America/New_York", date(2026, 3, 8)),  # 02:00 -> 03:00
    ("America/New_York", date(2026, 11, 1)),  # 02:00 -> 01:00
    ("Europe/Berlin", date(2026, 3, 29)),  # 02:00 -> 03:00
    ("Europe/Berlin", date(2026, 10, 25)),  # 03:00 -> 02:00
    ("Australia/Lord_Howe", date(2026, 4, 5)),  # 02:00 -> 01:30
    ("Australia/Lord_Howe", date(2026, 10, 4)),  # 02:00 -> 02:30
    ("America/New_York", date(2027, 3, 14)),
    ("Europe/Berlin", date(2027, 10, 31)),
)
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- strategies ----------------------------------------------------------------------------------


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# wall times at which the zones above skip or repeat a stretch (and their neighbours)
_NEAR_TRANSITIONS = [60 + 15 * k for k in range(12)]  # 01:00 .. 03:45
# quarter hours (they hit DST gaps and folds exactly), times near the changes, any minute
_start_minutes = st.one_of(
    st.integers(0, 95).map(lambda q: q * 15),
    st.sampled_from(_NEAR_TRANSITIONS),
    st.integers(0, 1439),
)
_end_minutes = st.one_of(
    st.integers(0, 96).map(lambda q: q * 15),
    st.sampled_from(_NEAR_TRANSITIONS),
    st.integers(0, 1440),
)
intervals = st.tuples(_start_minutes.map(_hhmm), _end_minutes.map(_hhmm))
_day_lists = st.lists(intervals, min_size=1, max_size=3)
working_hours = st.one_of(
    st.dictionaries(st.sampled_from(WEEKDAYS), _day_lists, max_size=7),
    _day_lists.map(lambda same: dict.fromkeys(WEEKDAYS, same)),  # every day alike
)


def _days_for(zone: str) -> st.SearchStrategy[date]:
    """Mostly the zone's own DST days and their neighbours, sometimes any day."""
    own = [day for name, day in TRANSITIONS if name == zone] or [day for _, day in TRANSITIONS]
    near = st.builds(
        lambda day, shift: day + timedelta(days=shift),
        st.sampled_from(own),
        st.sampled_from([-2, -1, 0, 0, 0, 1, 2]),
    )
    return st.one_of(near, near, st.dates(date(2026, 1, 1), date(2027, 12, 31)))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rules, date, str, list[Interval], datetime]:
    """Rules, a day, a requested zone, busy time around it (in assorted zones) and ``now``;
    ``now`` often placed so that the notice or the advance limit falls inside the day."""
    rules = Rules(
        timezone=draw(st.sampled_from(ZONES)),
        working_hours=draw(working_hours),
        buffer_minutes=draw(st.sampled_from([0, 0, 5, 10, 15, 30, 45, 60])),
        min_notice_hours=draw(st.sampled_from([0, 0, 1, 2, 5, 24, 48])),
        max_advance_days=draw(st.sampled_from([60, 60, 1, 2, 3, 5])),
    )
    day = draw(_days_for(rules.timezone))
    tz = draw(st.sampled_from(ZONES))
    anchor = datetime.combine(day, time(), UTC)
    busy: list[Interval] = []
    for _ in range(draw(st.integers(0, 6))):
        start = anchor + draw(st.integers(-3 * 1440, 4 * 1440)) * MINUTE
        end = start + draw(st.integers(1, 600)) * MINUTE
        zone = ZoneInfo(draw(st.sampled_from(ZONES)))
        busy.append((start.astimezone(zone), end.astimezone(zone)))
    limit_inside_day = anchor + draw(st.integers(-720, 1440 + 720)) * MINUTE
    now = draw(
        st.sampled_from(
            [
                anchor + draw(st.integers(-5 * 1440, 2 * 1440)) * MINUTE,
                limit_inside_day - timedelta(hours=rules.min_notice_hours),
                limit_inside_day - timedelta(days=rules.max_advance_days),
            ]
        )
    )
    return rules, day, tz, busy, now


# --- the brute-force oracle ----------------------------------------------------------------------


@lru_cache(maxsize=100_000)
def first_instant(wall: datetime, zone_name: str) -> datetime:
    """The first instant at which the zone's clock shows ``wall`` or later, by scanning."""
    zone = ZoneInfo(zone_name)
    guess = wall.replace(tzinfo=UTC) - zone.utcoffset(wall)  # type: ignore[operator]
    instant = guess - timedelta(hours=3)
    assert instant.astimezone(zone).replace(tzinfo=None) < wall
    while instant.astimezone(zone).replace(tzinfo=None) < wall:
        instant += MINUTE
    return instant


def oracle_working(rules: Rules, lo: datetime, hi: datetime) -> list[Interval]:
    """The working spans touching ``[lo, hi)``, each interval mapped on its own."""
    zone = ZoneInfo(rules.timezone)
    spans: list[Interval] = []
    day = lo.astimezone(zone).date() - 2 * DAY
    while day <= hi.astimezone(zone).date() + DAY:
        for start, end in rules.working_hours.get(WEEKDAYS[day.weekday()], ()):
            begin, finish = _minutes(start), _minutes(end)
            if finish <= begin:
                finish += 1440
            midnight = datetime.combine(day, time())
            spans.append(
                (
                    first_instant(midnight + begin * MINUTE, rules.timezone),
                    first_instant(midnight + finish * MINUTE, rules.timezone),
                )
            )
        day += DAY
    return spans


def oracle_free_minutes(
    rules: Rules, lo: datetime, hi: datetime, busy: Sequence[Interval], now: datetime
) -> list[bool]:
    """For each minute of ``[lo, hi)``: is it bookable?"""
    working = oracle_working(rules, lo, hi)
    buffer = rules.buffer_minutes * MINUTE
    # in UTC first: aware arithmetic within a zone is wall-clock arithmetic and drops
    # ``fold`` (an end at the second 02:00 of a fall-back night would become the first)
    blocked = [
        (start.astimezone(UTC) - buffer, end.astimezone(UTC) + buffer) for start, end in busy
    ]
    earliest = now + timedelta(hours=rules.min_notice_hours)
    latest = now + timedelta(days=rules.max_advance_days)
    free: list[bool] = []
    minute = lo
    while minute < hi:
        following = minute + MINUTE
        free.append(
            earliest <= minute
            and following <= latest
            and any(start <= minute < end for start, end in working)
            and not any(start < following and minute < end for start, end in blocked)
        )
        minute = following
    return free


def runs(lo: datetime, flags: list[bool]) -> list[Interval]:
    found: list[Interval] = []
    for index, flag in enumerate(flags):
        if not flag:
            continue
        start = lo + index * MINUTE
        if found and found[-1][1] == start:
            found[-1] = (found[-1][0], start + MINUTE)
        else:
            found.append((start, start + MINUTE))
    return found


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def utc_windows(windows: list[Interval]) -> list[Interval]:
    return [(start.astimezone(UTC), end.astimezone(UTC)) for start, end in windows]


def inside(slot: Interval, windows: list[Interval]) -> bool:
    return any(start <= slot[0] and slot[1] <= end for start, end in windows)


def refusal_code(rules: Rules, slot: Interval, busy: list[Interval], now: datetime) -> str | None:
    try:
        check_slot(rules, slot[0], slot[1], busy, now)
    except SlotRefused as refused:
        return refused.code
    return None


def expected_code(rules: Rules, slot: Interval, busy: list[Interval], now: datetime) -> str:
    """The reason the oracle gives for refusing a slot of valid length."""
    if slot[0] < now + timedelta(hours=rules.min_notice_hours):
        return "too_soon"
    if slot[1] > now + timedelta(days=rules.max_advance_days):
        return "too_far"
    covered = merge(oracle_working(rules, slot[0], slot[1]))
    if not inside(slot, covered):
        return "outside_working_hours"
    return "slot_unavailable"


# --- properties ----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(scenario=scenarios(), duration=st.integers(5, 300))
def test_windows_are_the_brute_force_free_time_of_the_day(
    scenario: tuple[Rules, date, str, list[Interval], datetime], duration: int
) -> None:
    rules, day, tz, busy, now = scenario
    windows = free_windows(rules, day, tz, duration, busy, now)
    lo = first_instant(datetime.combine(day, time()), tz)
    hi = first_instant(datetime.combine(day + DAY, time()), tz)
    assert local_day_bounds(day, tz) == (lo, hi)
    expected = [
        (start, end)
        for start, end in runs(lo, oracle_free_minutes(rules, lo, hi, busy, now))
        if end - start >= duration * MINUTE
    ]
    assert utc_windows(windows) == expected
    zone = ZoneInfo(tz)
    for start, end in windows:  # in the requested zone, printing offsets that read back right
        assert start.tzinfo == zone
        assert end.tzinfo == zone
        assert datetime.fromisoformat(start.isoformat()) == start.astimezone(UTC)
        assert datetime.fromisoformat(end.isoformat()) == end.astimezone(UTC)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), duration=st.integers(5, 300))
def test_windows_avoid_busy_time_stay_in_working_hours_and_are_long_enough(
    scenario: tuple[Rules, date, str, list[Interval], datetime], duration: int
) -> None:
    rules, day, tz, busy, now = scenario
    windows = utc_windows(free_windows(rules, day, tz, duration, busy, now))
    buffer = rules.buffer_minutes * MINUTE
    lo, hi = local_day_bounds(day, tz)
    working = merge(oracle_working(rules, lo, hi))
    for start, end in windows:
        # (1) clear of busy time widened by the buffer
        for busy_start, busy_end in busy:
            assert end <= busy_start - buffer or busy_end + buffer <= start
        # (2) inside the owner's working time, notice and advance
        assert inside((start, end), working)
        assert start >= now + timedelta(hours=rules.min_notice_hours)
        assert end <= now + timedelta(days=rules.max_advance_days)
        # (3) long enough, inside the requested day
        assert end - start >= duration * MINUTE
        assert lo <= start < end <= hi
    # (3) sorted and disjoint (not even touching: touching windows would be one)
    for (_, first_end), (second_start, _) in itertools.pairwise(windows):
        assert first_end < second_start


@PROPERTY_SETTINGS
@given(
    scenario=scenarios(),
    other_tz=st.sampled_from(ZONES),
    duration=st.integers(5, 300),
)
def test_the_answer_does_not_depend_on_the_requested_zone(
    scenario: tuple[Rules, date, str, list[Interval], datetime], other_tz: str, duration: int
) -> None:
    """(4) Over a run of days, two zones show the same free instants; and each zone's windows
    are exactly that free time cut at its own midnights, keeping pieces of ``duration``."""
    rules, day, tz, busy, now = scenario
    run = [day + shift * DAY for shift in range(-2, 3)]

    def union(zone: str, minutes: int) -> list[Interval]:
        found = [w for d in run for w in free_windows(rules, d, zone, minutes, busy, now)]
        return merge(found)

    covered_lo = max(local_day_bounds(run[0], tz)[0], local_day_bounds(run[0], other_tz)[0])
    covered_hi = min(local_day_bounds(run[-1], tz)[1], local_day_bounds(run[-1], other_tz)[1])
    assert covered_hi - covered_lo >= 2 * DAY

    def clipped(windows: list[Interval]) -> list[Interval]:
        return merge((max(s, covered_lo), min(e, covered_hi)) for s, e in windows)

    free_here, free_there = union(tz, 1), union(other_tz, 1)
    assert clipped(free_here) == clipped(free_there)

    for middle in run[1:-1]:  # these days of `tz` lie inside the range `other_tz` covered
        lo, hi = local_day_bounds(middle, tz)
        if not covered_lo <= lo < hi <= covered_hi:
            continue
        pieces = [(max(s, lo), min(e, hi)) for s, e in free_there if s < hi and lo < e]
        expected = [(s, e) for s, e in pieces if e - s >= duration * MINUTE]
        assert utc_windows(free_windows(rules, middle, tz, duration, busy, now)) == expected


@PROPERTY_SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_check_slot_accepts_exactly_what_free_windows_shows(
    scenario: tuple[Rules, date, str, list[Interval], datetime], data: st.DataObject
) -> None:
    """(5) Inside one local day: a slot passes ``check_slot`` iff it lies inside a window
    ``free_windows`` returns with ``duration_minutes`` equal to its length; refusals name the
    right reason."""
    rules, day, tz, busy, now = scenario
    lo, hi = local_day_bounds(day, tz)
    length = data.draw(st.integers(MIN_SLOT_MINUTES, min(MAX_SLOT_MINUTES, 600)), label="length")
    windows = utc_windows(free_windows(rules, day, tz, length, busy, now))

    # every slot of that length inside a returned window is accepted
    for start, end in windows:
        room = int((end - start) / MINUTE) - length
        offset = data.draw(st.integers(0, room), label="offset in window")
        slot_start = start + offset * MINUTE
        check_slot(rules, slot_start, slot_start + length * MINUTE, busy, now)

    # a random slot of the day: accepted iff inside a window, refused with the right reason
    day_minutes = int((hi - lo) / MINUTE)
    if day_minutes < length:
        return
    for _ in range(3):
        slot_start = lo + data.draw(st.integers(0, day_minutes - length), label="start") * MINUTE
        slot = (slot_start, slot_start + length * MINUTE)
        code = refusal_code(rules, slot, busy, now)
        if inside(slot, windows):
            assert code is None
        else:
            assert code == expected_code(rules, slot, busy, now)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_a_slot_across_local_midnight_is_judged_on_the_free_time_of_both_days(
    scenario: tuple[Rules, date, str, list[Interval], datetime], data: st.DataObject
) -> None:
    """The documented difference: windows stop at midnight, ``check_slot`` does not. A slot
    across the boundary passes iff both days' free time (any length) joined covers it."""
    rules, day, tz, busy, now = scenario
    midnight = local_day_bounds(day, tz)[1]
    length = data.draw(st.integers(MIN_SLOT_MINUTES, 600), label="length")
    before = data.draw(st.integers(1, length - 1), label="minutes before midnight")
    slot = (midnight - before * MINUTE, midnight + (length - before) * MINUTE)
    joined = merge(
        free_windows(rules, day, tz, 1, busy, now)
        + free_windows(rules, day + DAY, tz, 1, busy, now)
    )
    code = refusal_code(rules, slot, busy, now)
    if inside(slot, joined):
        assert code is None
    else:
        assert code == expected_code(rules, slot, busy, now)
