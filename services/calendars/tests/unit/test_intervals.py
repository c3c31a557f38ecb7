"""Half-open intervals: merge, clip, busy time from events, free gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from calendars.domain.intervals import Interval, busy_from_events, clip, merge, subtract
from calendars.domain.remote import RemoteEvent

BASE = datetime(2025, 10, 13, tzinfo=UTC)


def t(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def iv(lo: int, hi: int) -> Interval:
    return (t(lo), t(hi))


# --- examples ------------------------------------------------------------------------------


def test_merge_examples() -> None:
    assert merge([]) == []
    assert merge([iv(30, 40), iv(0, 10), iv(5, 15)]) == [iv(0, 15), iv(30, 40)]
    assert merge([iv(0, 10), iv(10, 20)]) == [iv(0, 20)]  # touching
    assert merge([iv(0, 100), iv(10, 20), iv(30, 40)]) == [iv(0, 100)]  # nested
    assert merge([iv(10, 10), iv(20, 15)]) == []  # empty and negative
    assert merge([iv(0, 10), iv(0, 10)]) == [iv(0, 10)]
    assert merge(iter([iv(5, 6)])) == [iv(5, 6)]  # any iterable


def test_merge_compares_instants_across_zones() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    local = (datetime(2025, 10, 13, 10, tzinfo=berlin), datetime(2025, 10, 13, 11, tzinfo=berlin))
    assert merge([local, (BASE.replace(hour=9), BASE.replace(hour=10))]) == [
        (BASE.replace(hour=8), BASE.replace(hour=10))
    ]


def test_clip_examples() -> None:
    assert clip([iv(-10, 10), iv(20, 30), iv(50, 70), iv(80, 90)], t(0), t(60)) == [
        iv(0, 10),
        iv(20, 30),
        iv(50, 60),
    ]
    assert clip([iv(-10, 0), iv(60, 70)], t(0), t(60)) == []  # touching the edge only
    assert clip([iv(10, 20)], t(30), t(0)) == []  # empty window


def test_subtract_examples() -> None:
    window = iv(0, 100)
    assert subtract(window, []) == [window]
    assert subtract(window, [iv(-50, 150)]) == []
    assert subtract(window, [iv(10, 20), iv(15, 30), iv(50, 60), iv(90, 200)]) == [
        iv(0, 10),
        iv(30, 50),
        iv(60, 90),
    ]
    assert subtract(window, [iv(0, 10), iv(10, 20)]) == [iv(20, 100)]
    assert subtract(iv(10, 10), [iv(0, 5)]) == []


def event(lo: int, hi: int, status: str = "confirmed", transparent: bool = False) -> RemoteEvent:
    return RemoteEvent(
        uid=f"e{lo}-{hi}", start=t(lo), end=t(hi), status=status, transparent=transparent
    )


def test_busy_from_events_only_blocking_clipped_and_merged() -> None:
    events = [
        event(-30, 30),  # crosses the window start
        event(30, 45),  # touches the first one
        event(50, 70, transparent=True),
        event(60, 80, status="cancelled"),
        event(90, 95, status="tentative"),
        event(100, 130),  # crosses the window end
        event(200, 210),  # outside
    ]
    assert busy_from_events(events, t(0), t(120)) == [iv(0, 45), iv(90, 95), iv(100, 120)]
    assert busy_from_events([], t(0), t(120)) == []


# --- properties -----------------------------------------------------------------------------

minutes = st.integers(min_value=-200, max_value=200)
raw_intervals = st.lists(st.tuples(minutes, minutes), max_size=12)


def covered(intervals: list[Interval], moment: datetime) -> bool:
    return any(lo <= moment < hi for lo, hi in intervals)


def points(lo: int = -210, hi: int = 210) -> list[datetime]:
    """Every whole minute and every half minute: endpoints and the insides of intervals."""
    return [BASE + timedelta(seconds=30 * k) for k in range(2 * lo, 2 * hi + 1)]


@given(raw_intervals)
def test_merge_is_sorted_disjoint_non_touching_and_covers_the_union(
    raw: list[tuple[int, int]],
) -> None:
    given_intervals = [iv(lo, hi) for lo, hi in raw]
    merged = merge(given_intervals)

    assert all(lo < hi for lo, hi in merged)
    for (_, first_end), (second_start, _) in pairwise(merged):
        assert first_end < second_start  # sorted, no overlap and no touching
    for moment in points():
        assert covered(merged, moment) == covered(given_intervals, moment)
    assert merge(merged) == merged  # idempotent


@given(raw_intervals, minutes, minutes)
def test_clip_stays_inside_and_keeps_exactly_the_covered_part(
    raw: list[tuple[int, int]], a: int, b: int
) -> None:
    given_intervals = [iv(lo, hi) for lo, hi in raw]
    start, end = t(min(a, b)), t(max(a, b))
    clipped = clip(given_intervals, start, end)
    assert all(start <= lo < hi <= end for lo, hi in clipped)
    for moment in points():
        inside = start <= moment < end
        assert covered(clipped, moment) == (inside and covered(given_intervals, moment))


@given(raw_intervals, minutes, minutes)
def test_free_and_busy_partition_the_window(raw: list[tuple[int, int]], a: int, b: int) -> None:
    busy_input = [iv(lo, hi) for lo, hi in raw]
    window = (t(min(a, b)), t(max(a, b)))
    free = subtract(window, busy_input)
    busy = merge(clip(busy_input, *window))

    assert free == merge(free)  # sorted, disjoint, non-touching
    assert all(window[0] <= lo < hi <= window[1] for lo, hi in free)
    for moment in points():
        in_free, in_busy = covered(free, moment), covered(busy, moment)
        assert not (in_free and in_busy)
        assert (in_free or in_busy) == (window[0] <= moment < window[1])
    # together the pieces add up to the window's length
    total = sum((hi - lo for lo, hi in free + busy), timedelta(0))
    assert total == window[1] - window[0]


@given(st.lists(st.tuples(minutes, minutes, st.booleans(), st.booleans()), max_size=10))
def test_busy_from_events_matches_blocking_events(
    raw: list[tuple[int, int, bool, bool]],
) -> None:
    events = [
        event(lo, hi, transparent=transparent, status="cancelled" if cancelled else "confirmed")
        for lo, hi, transparent, cancelled in raw
        if lo < hi
    ]
    start, end = t(-100), t(100)
    busy = busy_from_events(events, start, end)
    assert busy == merge(busy)
    blocking = [(e.start, e.end) for e in events if e.blocks]
    for moment in points():
        expected = start <= moment < end and covered(blocking, moment)
        assert covered(busy, moment) == expected
