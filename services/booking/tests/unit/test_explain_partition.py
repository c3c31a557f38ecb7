"""The explained day (``booking.domain.explain``): free windows and explained busy blocks
partition the local day exactly, over random rules, zones (DST days among them), busy time
and ``now``; the free windows are ``free_windows``' answer; every block has a reason, and
its reasons are what the engine's rule says about that time."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.domain.availability import (
    Rules,
    free_intervals,
    free_windows,
    local_day_bounds,
    working_intervals,
)
from booking.domain.explain import (
    Block,
    Buffer,
    Busy,
    MaxAdvance,
    MinNotice,
    Occupied,
    OutsideWorkingHours,
    TooShort,
    explain_day,
)

MINUTE = timedelta(minutes=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONES = ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")
DST_DAYS = (
    date(2026, 3, 8),  # New York: 02:00 -> 03:00
    date(2026, 11, 1),  # New York: 02:00 -> 01:00
    date(2026, 3, 29),  # Berlin: 02:00 -> 03:00
    date(2026, 10, 25),  # Berlin: 03:00 -> 02:00
    date(2026, 4, 5),  # Lord Howe: 02:00 -> 01:30
    date(2026, 10, 4),  # Lord Howe: 02:00 -> 02:30
)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


_minutes = st.one_of(st.integers(0, 96).map(lambda q: q * 15), st.integers(0, 1440))
_spans = st.lists(
    st.tuples(_minutes.filter(lambda m: m < 1440).map(_hhmm), _minutes.map(_hhmm)),
    min_size=1,
    max_size=3,
)
_hours = st.one_of(
    st.dictionaries(st.sampled_from(WEEKDAYS), _spans, max_size=7),
    _spans.map(lambda same: dict.fromkeys(WEEKDAYS, same)),
)
Scenario = tuple[Rules, date, str, int, list[Busy[str]], datetime]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    rules = Rules(
        timezone=draw(st.sampled_from(ZONES)),
        working_hours=draw(_hours),
        buffer_minutes=draw(st.sampled_from([0, 0, 5, 10, 15, 30, 60])),
        min_notice_hours=draw(st.sampled_from([0, 0, 1, 5, 24])),
        max_advance_days=draw(st.sampled_from([60, 60, 1, 2])),
    )
    day = draw(st.one_of(st.sampled_from(DST_DAYS), st.dates(date(2026, 1, 1), date(2027, 12, 31))))
    tz = draw(st.sampled_from(ZONES))
    duration = draw(st.sampled_from([5, 15, 30, 45, 60, 90]))
    anchor = datetime.combine(day, time(), UTC)
    busy: list[Busy[str]] = []
    for n in range(draw(st.integers(0, 8))):
        start = anchor + draw(st.integers(-2 * 1440, 3 * 1440)) * MINUTE
        end = start + draw(st.integers(0, 300)) * MINUTE
        zone = ZoneInfo(draw(st.sampled_from(ZONES)))
        busy.append(Busy(start.astimezone(zone), end.astimezone(zone), f"event-{n}"))
    seconds = draw(st.integers(0, 59))  # now off the minute grid: notice edges anywhere
    limit = anchor + draw(st.integers(-720, 1440 + 720)) * MINUTE + seconds * timedelta(seconds=1)
    now = draw(
        st.sampled_from(
            [
                limit,
                limit - timedelta(hours=rules.min_notice_hours),
                limit - timedelta(days=rules.max_advance_days),
            ]
        )
    )
    return rules, day, tz, duration, busy, now


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_free_and_explained_partition_the_day(scenario: Scenario) -> None:
    rules, day, tz, duration, busy, now = scenario
    parts = explain_day(rules, day, tz, duration, busy, now)
    intervals = [(b.start, b.end) for b in busy]

    # the free windows are availability's, to the instant and the zone
    assert parts.free == free_windows(rules, day, tz, duration, intervals, now)
    assert all(_utc(e) - _utc(s) >= duration * MINUTE for s, e in parts.free)

    # free + busy = [local midnight, next local midnight), sorted and disjoint
    pieces = sorted(
        [(_utc(s), _utc(e), None) for s, e in parts.free]
        + [(_utc(b.start), _utc(b.end), b) for b in parts.busy],
        key=lambda p: p[0],
    )
    lo, hi = local_day_bounds(day, tz)
    assert pieces[0][0] == lo and pieces[-1][1] == hi
    for (_, end, _), (start, _, _) in itertools.pairwise(pieces):
        assert end == start
    assert all(s < e for s, e, _ in pieces)
    zone = ZoneInfo(tz)
    assert all(b.start.tzinfo == zone and b.end.tzinfo == zone for b in parts.busy)

    # blocks are maximal and explained, by what the engine's rule says of that time
    for left, right in zip(parts.busy, parts.busy[1:], strict=False):
        assert left.end != right.start or left.reasons != right.reasons
    buffer = timedelta(minutes=rules.buffer_minutes)
    earliest = _utc(now) + timedelta(hours=rules.min_notice_hours)
    latest = _utc(now) + timedelta(days=rules.max_advance_days)
    for block in parts.busy:
        assert block.reasons
        _check_reasons(rules, block, busy, buffer, earliest, latest, lo, hi, duration, now)


def _check_reasons(
    rules: Rules,
    block: Block[str],
    busy: list[Busy[str]],
    buffer: timedelta,
    earliest: datetime,
    latest: datetime,
    lo: datetime,
    hi: datetime,
    duration: int,
    now: datetime,
) -> None:
    t, end = _utc(block.start), _utc(block.end)
    kinds = {type(r) for r in block.reasons}
    assert (OutsideWorkingHours in kinds) == (working_intervals(rules, t, end) != [(t, end)])
    assert (MinNotice in kinds) == (t < earliest)
    assert (MaxAdvance in kinds) == (t >= latest)
    occupied = {r.source for r in block.reasons if isinstance(r, Occupied)}
    assert occupied == {b.source for b in busy if _utc(b.start) <= t < _utc(b.end)}
    for reason in block.reasons:
        if isinstance(reason, Buffer):
            (source,) = [b for b in busy if b.source in (reason.after, reason.before)]
            if reason.before is not None:
                assert _utc(source.start) - buffer <= t < _utc(source.start)
            else:
                assert _utc(source.end) <= t < _utc(source.end) + buffer
    free_here = free_intervals(rules, t, end, [(b.start, b.end) for b in busy], now)
    if TooShort in kinds:
        assert kinds == {TooShort}
        (short,) = [r for r in block.reasons if isinstance(r, TooShort)]
        assert free_here == [(t, end)] and short.free == end - t < duration * MINUTE
        # the whole free stretch of the day (cut at its midnights), too short
        whole_day = free_intervals(rules, lo, hi, [(x.start, x.end) for x in busy], now)
        assert [(a, b) for a, b in whole_day if a <= t < b] == [(t, end)]
    else:
        assert free_here == []


def test_a_day_explained() -> None:
    """09:00-17:00 UTC, a 10-minute buffer, an event 12:00-13:00 and a booking 15:00-15:30,
    2 hours' notice from 08:00: what each stretch of the day is, and why."""
    rules = Rules(
        timezone="UTC",
        working_hours={key: [("09:00", "17:00")] for key in WEEKDAYS},
        buffer_minutes=10,
        min_notice_hours=2,
    )
    day = date(2026, 6, 10)

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 6, 10, hour, minute, tzinfo=UTC)

    busy = [Busy(at(12), at(13), "lunch"), Busy(at(15), at(15, 30), "bk_1")]
    parts = explain_day(rules, day, "UTC", 30, busy, at(8))
    assert parts.free == [(at(10), at(11, 50)), (at(13, 10), at(14, 50)), (at(15, 40), at(17))]
    notice = MinNotice(2, at(10))
    assert [(b.start, b.end, b.reasons) for b in parts.busy] == [
        (at(0), at(9), (OutsideWorkingHours(), notice)),
        (at(9), at(10), (notice,)),
        (at(11, 50), at(12), (Buffer(10, before="lunch"),)),
        (at(12), at(13), (Occupied("lunch"),)),
        (at(13), at(13, 10), (Buffer(10, after="lunch"),)),
        (at(14, 50), at(15), (Buffer(10, before="bk_1"),)),
        (at(15), at(15, 30), (Occupied("bk_1"),)),
        (at(15, 30), at(15, 40), (Buffer(10, after="bk_1"),)),
        (at(17), at(0) + timedelta(days=1), (OutsideWorkingHours(),)),
    ]


def test_a_free_stretch_too_short_is_explained() -> None:
    rules = Rules(timezone="UTC", working_hours={key: [("09:00", "10:00")] for key in WEEKDAYS})
    start = datetime(2026, 6, 10, 9, tzinfo=UTC)
    busy = [Busy(start + 20 * MINUTE, start + 60 * MINUTE, "x")]
    parts = explain_day(rules, date(2026, 6, 10), "UTC", 30, busy, start - timedelta(days=1))
    assert parts.free == []
    assert (parts.busy[1].start, parts.busy[1].end, parts.busy[1].reasons) == (
        start,
        start + 20 * MINUTE,
        (TooShort(20 * MINUTE, 30),),
    )


@pytest.mark.parametrize("duration", [0, True, 1.5])
def test_a_bad_duration_is_refused(duration: Any) -> None:
    rules = Rules(timezone="UTC")
    with pytest.raises(ValueError, match="duration_minutes"):
        explain_day(rules, date(2026, 6, 10), "UTC", duration, [], datetime.now(UTC))
