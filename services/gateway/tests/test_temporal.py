"""The time tools (gateway.temporal): DST transitions, month ends, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_runtime.walltime import local_instant, local_wall, wall_status
from gateway import temporal as t

BERLIN, NEW_YORK, LORD_HOWE = "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"
ZONES = [BERLIN, NEW_YORK, LORD_HOWE, "UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Apia"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- get_temporal_context --------------------------------------------------------------------


def test_context_in_berlin_names_the_spring_transition() -> None:
    context = t.get_temporal_context(BERLIN, at("2026-03-01T12:00:00+00:00"))
    assert context.now_local.isoformat() == "2026-03-01T13:00:00+01:00"
    assert (context.utc_offset, context.abbreviation, context.dst) == ("+01:00", "CET", False)
    assert context.weekday == "Sunday"
    transition = context.next_transition
    assert transition is not None
    assert transition.at == at("2026-03-29T01:00:00+00:00")
    assert (transition.offset_before, transition.offset_after) == ("+01:00", "+02:00")
    assert (transition.abbreviation_before, transition.abbreviation_after) == ("CET", "CEST")
    assert transition.dst_after and transition.shift_minutes == 60
    assert transition.local_after.isoformat() == "2026-03-29T03:00:00+02:00"


def test_context_in_new_york_in_summer_names_the_fall_transition() -> None:
    context = t.get_temporal_context(NEW_YORK, at("2026-07-04T16:00:00+00:00"))
    assert (context.utc_offset, context.abbreviation, context.dst) == ("-04:00", "EDT", True)
    transition = context.next_transition
    assert transition is not None
    assert transition.at == at("2026-11-01T06:00:00+00:00")
    assert transition.shift_minutes == -60 and not transition.dst_after
    assert transition.local_after.isoformat() == "2026-11-01T01:00:00-05:00"


def test_context_in_lord_howe_shifts_thirty_minutes() -> None:
    context = t.get_temporal_context(LORD_HOWE, at("2026-03-01T00:00:00+00:00"))
    assert context.utc_offset == "+11:00" and context.dst
    transition = context.next_transition
    assert transition is not None
    assert transition.at == at("2026-04-04T15:00:00+00:00")
    assert (transition.offset_before, transition.offset_after) == ("+11:00", "+10:30")
    assert transition.shift_minutes == -30


def test_context_without_dst_has_no_transition_and_defaults_to_utc() -> None:
    assert t.get_temporal_context("Asia/Tokyo", at("2026-03-01T00:00:00Z")).next_transition is None
    context = t.get_temporal_context(None, at("2026-03-01T00:00:00+05:00"))
    assert context.timezone == "UTC" and context.now_utc == at("2026-02-28T19:00:00Z")


def test_context_refuses_a_naive_now_and_an_unknown_zone() -> None:
    with pytest.raises(t.TemporalError, match="no UTC offset"):
        t.get_temporal_context(BERLIN, datetime(2026, 3, 1))
    for bad in ("Mars/Olympus", "../../etc/passwd", "", "europe/berlin "):
        with pytest.raises(t.TemporalError, match="time zone"):
            t.get_temporal_context(bad, at("2026-03-01T00:00:00Z"))


# --- convert_timezone ------------------------------------------------------------------------


def test_convert_an_instant() -> None:
    answer = t.convert_timezone(at("2026-03-29T09:30:00+02:00"), NEW_YORK)
    assert answer.result.local.isoformat() == "2026-03-29T03:30:00-04:00"
    assert answer.result.abbreviation == "EDT" and answer.resolution == "exact"
    assert answer.source.utc_offset == "+02:00"


def test_convert_a_wall_time_that_does_not_exist_moves_forward_to_the_transition() -> None:
    answer = t.convert_timezone(datetime(2026, 3, 29, 2, 30), "UTC", BERLIN)
    assert answer.resolution == "nonexistent_moved_forward"
    assert answer.source.local.isoformat() == "2026-03-29T03:00:00+02:00"
    assert answer.result.utc == at("2026-03-29T01:00:00Z")


def test_convert_an_ambiguous_wall_time_takes_the_first_occurrence() -> None:
    answer = t.convert_timezone(datetime(2026, 11, 1, 1, 30), "UTC", NEW_YORK)
    assert answer.resolution == "ambiguous_first_occurrence"
    assert answer.result.utc == at("2026-11-01T05:30:00Z")  # EDT, the first 01:30


def test_convert_a_wall_time_needs_its_zone() -> None:
    with pytest.raises(t.TemporalError, match="from_zone"):
        t.convert_timezone(datetime(2026, 3, 29, 9, 30), BERLIN)


def test_the_input_model_reads_the_datetime_argument() -> None:
    model = t.ConvertTimezoneInput.model_validate(
        {"datetime": "2026-03-29T02:30", "to_zone": "UTC", "from_zone": BERLIN}
    )
    assert model.datetime == datetime(2026, 3, 29, 2, 30)


# --- compute_duration ------------------------------------------------------------------------


def test_duration_across_spring_forward_states_wall_clock_and_elapsed() -> None:
    answer = t.compute_duration(at("2026-03-29T01:00:00+01:00"), at("2026-03-29T03:00:00+02:00"))
    assert (answer.seconds, answer.minutes, answer.hours) == (3600, 60, 1)
    assert answer.human == "1 hour"
    assert answer.wall_clock_seconds == 7200 and answer.wall_clock_differs
    assert "1 hour more" in answer.note


def test_duration_read_in_a_zone_across_fall_back() -> None:
    start, end = at("2026-11-01T00:00:00-04:00"), at("2026-11-02T00:00:00-05:00")
    answer = t.compute_duration(start, end, NEW_YORK)
    assert answer.hours == 25 and answer.wall_clock_seconds == 24 * 3600
    assert answer.human == "1 day, 1 hour" and "1 hour less" in answer.note


def test_negative_duration_and_breakdown() -> None:
    answer = t.compute_duration(at("2026-01-02T03:04:05Z"), at("2026-01-01T00:00:00Z"))
    assert answer.seconds == -(86400 + 3 * 3600 + 4 * 60 + 5)
    assert answer.breakdown.model_dump() == {
        "negative": True,
        "days": 1,
        "hours": 3,
        "minutes": 4,
        "seconds": 5,
    }
    assert answer.human == "minus 1 day, 3 hours, 4 minutes, 5 seconds"
    assert not answer.wall_clock_differs


def test_duration_needs_offsets() -> None:
    with pytest.raises(t.TemporalError, match="no UTC offset"):
        t.compute_duration(datetime(2026, 1, 1), at("2026-01-02T00:00:00Z"))


# --- adjust_timestamp ------------------------------------------------------------------------


def test_a_day_across_spring_forward_keeps_the_wall_time_and_lasts_23_hours() -> None:
    answer = t.adjust_timestamp(at("2026-03-28T09:00:00+01:00"), 1, "days", BERLIN)
    assert answer.result.local.isoformat() == "2026-03-29T09:00:00+02:00"
    assert answer.kind == "calendar" and answer.elapsed_seconds == 23 * 3600


def test_24_hours_across_spring_forward_is_exact() -> None:
    answer = t.adjust_timestamp(at("2026-03-28T09:00:00+01:00"), 24, "hours", BERLIN)
    assert answer.result.local.isoformat() == "2026-03-29T10:00:00+02:00"
    assert answer.kind == "elapsed" and answer.elapsed_seconds == 24 * 3600


def test_a_calendar_step_into_the_gap_moves_forward_to_the_transition() -> None:
    answer = t.adjust_timestamp(at("2026-03-07T02:30:00-05:00"), 1, "days", NEW_YORK)
    assert answer.result.local.isoformat() == "2026-03-08T03:00:00-04:00"
    assert answer.resolution == "nonexistent_moved_forward"


def test_a_calendar_step_into_the_repeated_hour_takes_the_first_occurrence() -> None:
    answer = t.adjust_timestamp(at("2026-10-31T01:30:00-04:00"), 1, "days", NEW_YORK)
    assert answer.result.local.isoformat() == "2026-11-01T01:30:00-04:00"
    assert answer.resolution == "ambiguous_first_occurrence"


def test_lord_howe_half_hour_gap() -> None:
    # 2026-10-04 02:00 -> 02:30 does not exist on Lord Howe
    answer = t.adjust_timestamp(datetime(2026, 10, 3, 2, 15), 1, "days", LORD_HOWE)
    assert answer.result.local.isoformat() == "2026-10-04T02:30:00+11:00"
    assert answer.resolution == "nonexistent_moved_forward"
    assert answer.elapsed_seconds == 24 * 3600 - 15 * 60 + 30 * 60 - 30 * 60


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected", "clamped"),
    [
        ("2026-01-31T10:00:00+01:00", 1, "months", "2026-02-28T10:00:00+01:00", True),
        ("2028-01-31T10:00:00+01:00", 1, "months", "2028-02-29T10:00:00+01:00", True),
        ("2028-02-29T10:00:00+01:00", 1, "years", "2029-02-28T10:00:00+01:00", True),
        ("2026-03-31T10:00:00+02:00", -1, "months", "2026-02-28T10:00:00+01:00", True),
        ("2026-01-15T10:00:00+01:00", 3, "months", "2026-04-15T10:00:00+02:00", False),
        ("2026-03-25T10:00:00+01:00", 1, "weeks", "2026-04-01T10:00:00+02:00", False),
    ],
)
def test_month_end_clamping(
    start: str, amount: int, unit: str, expected: str, clamped: bool
) -> None:
    answer = t.adjust_timestamp(at(start), amount, unit, BERLIN)
    assert answer.result.local.isoformat() == expected
    assert answer.clamped_to_month_end is clamped


def test_adjust_refuses_bad_units_and_overflow() -> None:
    with pytest.raises(t.TemporalError, match="Unknown unit"):
        t.adjust_timestamp(at("2026-01-01T00:00:00Z"), 1, "fortnights", BERLIN)
    with pytest.raises(t.TemporalError, match="years 1 to 9999"):
        t.adjust_timestamp(at("9999-12-01T00:00:00Z"), 2, "months", "UTC")
    with pytest.raises(t.TemporalError, match="years 1 to 9999"):
        t.adjust_timestamp(at("9999-12-31T00:00:00Z"), 1_000_000, "hours", "UTC")


# --- expand_rrule ----------------------------------------------------------------------------


def test_weekly_rule_keeps_the_wall_time_across_dst() -> None:
    answer = t.expand_rrule(
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3", datetime(2026, 3, 16, 9, 0), BERLIN
    )
    assert [o.start.isoformat() for o in answer.occurrences] == [
        "2026-03-16T09:00:00+01:00",
        "2026-03-23T09:00:00+01:00",
        "2026-03-30T09:00:00+02:00",
    ]
    assert answer.count == 3


def test_daily_rule_through_the_gap_and_the_repeated_hour() -> None:
    spring = t.expand_rrule("FREQ=DAILY", datetime(2026, 3, 7, 2, 30), NEW_YORK, count=3)
    assert [(o.start.isoformat(), o.resolution) for o in spring.occurrences] == [
        ("2026-03-07T02:30:00-05:00", "exact"),
        ("2026-03-08T03:00:00-04:00", "nonexistent_moved_forward"),
        ("2026-03-09T02:30:00-04:00", "exact"),
    ]
    fall = t.expand_rrule("FREQ=DAILY;COUNT=2", datetime(2026, 10, 31, 1, 30), NEW_YORK)
    assert fall.occurrences[1].start_utc == at("2026-11-01T05:30:00Z")
    assert fall.occurrences[1].resolution == "ambiguous_first_occurrence"


def test_walls_that_all_fall_into_the_gap_give_one_occurrence() -> None:
    answer = t.expand_rrule(
        "FREQ=MINUTELY;INTERVAL=15", datetime(2026, 3, 29, 1, 45), BERLIN, count=4
    )
    assert [o.start.isoformat() for o in answer.occurrences] == [
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]


def test_until_in_utc_in_the_rule_and_as_argument() -> None:
    in_rule = t.expand_rrule(
        "FREQ=DAILY;UNTIL=20260330T070000Z", datetime(2026, 3, 27, 9, 0), BERLIN
    )
    # inclusive: the 30th 09:00+02:00 is exactly 07:00Z
    assert [o.start.day for o in in_rule.occurrences] == [27, 28, 29, 30]
    before = t.expand_rrule(
        "FREQ=DAILY;UNTIL=20260330T065959Z", datetime(2026, 3, 27, 9, 0), BERLIN
    )
    assert [o.start.day for o in before.occurrences] == [27, 28, 29]
    argument = t.expand_rrule(
        "FREQ=DAILY", datetime(2026, 3, 27, 9, 0), BERLIN, until=at("2026-03-30T07:00:00Z")
    )
    assert argument.occurrences == in_rule.occurrences
    date_only = t.expand_rrule("FREQ=DAILY;UNTIL=20260329", datetime(2026, 3, 27, 9, 0), BERLIN)
    assert [o.start.day for o in date_only.occurrences] == [27, 28, 29]


def test_an_aware_dtstart_is_read_in_the_zone() -> None:
    answer = t.expand_rrule("FREQ=DAILY;COUNT=2", at("2026-03-28T08:00:00Z"), BERLIN)
    assert [o.start.isoformat() for o in answer.occurrences] == [
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
    ]


def test_expand_is_bounded() -> None:
    assert t.expand_rrule("FREQ=DAILY", datetime(2026, 1, 1), "UTC", count=1000).count == 1000
    with pytest.raises(t.TemporalError, match="more than 1000"):
        t.expand_rrule("FREQ=DAILY", datetime(2026, 1, 1), "UTC")
    with pytest.raises(t.TemporalError, match="count must be"):
        t.expand_rrule("FREQ=DAILY", datetime(2026, 1, 1), "UTC", count=1001)
    with pytest.raises(t.TemporalError, match="not both"):
        t.expand_rrule("FREQ=DAILY", datetime(2026, 1, 1), "UTC", 2, at("2026-02-01T00:00:00Z"))
    assert t.expand_rrule("FREQ=DAILY;COUNT=5000", datetime(2026, 1, 1), "UTC", count=3).count == 3


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=FORTNIGHTLY",
        "FREQ=DAILY;BYDAY=XX",
        "FREQ=DAILY;UNTIL=tomorrow",
        "FREQ=DAILY;DTSTART=20260101T000000",
        "FREQ=DAILY\nRRULE:FREQ=WEEKLY",
        "EXDATE:20260101",
        "",
        "COUNT=3",
    ],
)
def test_invalid_rules_are_a_temporal_error(rule: str) -> None:
    with pytest.raises(t.TemporalError):
        t.expand_rrule(rule, datetime(2026, 1, 1), "UTC", count=3)
    assert issubclass(t.TemporalError, ValueError)


@pytest.mark.timeout(60)  # a hang fails here; no timing assertion (a busy machine is slow)
def test_a_rule_that_matches_nothing_ends_quickly() -> None:
    answer = t.expand_rrule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 1, 1), "UTC")
    assert answer.count == 0
    for rule in ("FREQ=SECONDLY;BYSETPOS=2", "FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31"):
        with pytest.raises(t.TemporalError, match="coarser FREQ"):
            t.expand_rrule(rule, datetime(2026, 1, 1), "UTC")


def test_the_search_ends_100_years_after_dtstart() -> None:
    answer = t.expand_rrule("FREQ=YEARLY", datetime(2028, 2, 29, 9, 0), "UTC")
    assert answer.occurrences[-1].start.year <= 2128 and answer.count == 25  # leap days
    late = t.expand_rrule("FREQ=YEARLY", datetime(9990, 1, 1), "UTC")
    assert late.count == 10


def test_expand_refuses_an_unknown_zone() -> None:
    with pytest.raises(t.TemporalError, match="Unknown time zone"):
        t.expand_rrule("FREQ=DAILY", datetime(2026, 1, 1), "Nowhere/Land", count=1)


# --- properties ------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)
walls = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1))
zones = st.sampled_from(ZONES)


@settings(max_examples=300, deadline=None)
@given(instants, zones, zones)
def test_convert_there_and_back_is_the_same_instant(instant: datetime, a: str, b: str) -> None:
    there = t.convert_timezone(instant, a)
    back = t.convert_timezone(there.result.local, b)
    assert there.result.utc == back.result.utc == instant
    # and through the naive wall time and its zone, except where the wall time repeats
    wall = local_wall(instant, ZoneInfo(a))
    again = t.convert_timezone(wall, "UTC", a)
    if wall_status(wall, ZoneInfo(a)) == "exact":
        assert again.result.utc == instant


@settings(max_examples=300, deadline=None)
@given(walls, zones)
def test_the_wall_time_rule(wall: datetime, name: str) -> None:
    zone = ZoneInfo(name)
    instant = local_instant(wall, zone)
    status = wall_status(wall, zone)
    if status == "nonexistent":
        # the transition: the first instant whose wall time is past the requested one
        assert local_wall(instant, zone) > wall
        assert local_wall(instant - timedelta(seconds=1), zone) < wall
    else:
        assert local_wall(instant, zone) == wall
        if status == "ambiguous":
            assert local_wall(instant - timedelta(hours=1), zone) != wall or name == LORD_HOWE


@settings(max_examples=300, deadline=None)
@given(instants, st.integers(-2000, 2000), st.sampled_from(["seconds", "minutes", "hours"]), zones)
def test_exact_units_add_elapsed_time(instant: datetime, n: int, unit: str, name: str) -> None:
    answer = t.adjust_timestamp(instant, n, unit, name)
    seconds = n * {"seconds": 1, "minutes": 60, "hours": 3600}[unit]
    assert answer.result.utc - instant == timedelta(seconds=seconds)
    assert answer.elapsed_seconds == seconds


@settings(max_examples=300, deadline=None)
@given(instants, st.integers(-400, 400), st.sampled_from(["days", "weeks"]), zones)
def test_days_keep_the_wall_time_unless_it_does_not_exist(
    instant: datetime, n: int, unit: str, name: str
) -> None:
    zone = ZoneInfo(name)
    answer = t.adjust_timestamp(instant, n, unit, name)
    expected = local_wall(instant, zone) + timedelta(days=n * (7 if unit == "weeks" else 1))
    if answer.resolution == "nonexistent_moved_forward":
        assert local_wall(answer.result.utc, zone) > expected
    else:
        assert local_wall(answer.result.utc, zone) == expected
    assert answer.result.utc == local_instant(expected, zone)


@settings(max_examples=300, deadline=None)
@given(instants, instants, st.sampled_from([*ZONES, None]))
def test_duration_is_the_difference_of_instants(a: datetime, b: datetime, name: str | None) -> None:
    a, b = a.replace(microsecond=0), b.replace(microsecond=0)
    shown_a = a.astimezone(timezone(timedelta(hours=5, minutes=30)))
    answer = t.compute_duration(shown_a, b, name)
    assert answer.seconds == (b - a).total_seconds()
    back = t.adjust_timestamp(a, int(answer.seconds), "seconds", "UTC")
    assert back.result.utc == b
    parts = answer.breakdown
    total = ((parts.days * 24 + parts.hours) * 60 + parts.minutes) * 60 + parts.seconds
    assert total == abs(answer.seconds)


@settings(max_examples=100, deadline=None)
@given(walls, zones, st.integers(1, 50))
def test_rrule_daily_occurrences_follow_adjust_timestamp(
    start: datetime, name: str, count: int
) -> None:
    start = start.replace(microsecond=0)
    answer = t.expand_rrule("FREQ=DAILY", start, name, count=count)
    assert answer.count == count
    first = local_instant(start, ZoneInfo(name))
    for n, occurrence in enumerate(answer.occurrences):
        stepped = t.adjust_timestamp(start + timedelta(days=n), 0, "days", name)
        assert occurrence.start_utc == stepped.result.utc
        assert occurrence.start_utc >= first
