"""The time tools agents get wrong: pure, deterministic, no I/O but the clock passed in.

``get_temporal_context``, ``convert_timezone``, ``compute_duration``, ``adjust_timestamp`` and
``expand_rrule``, each with a Pydantic input model (the MCP tool's arguments) and output model
(its output schema). Bad input raises :class:`TemporalError` (a ``ValueError``) with a message
an agent can act on; the MCP layer turns it into a tool error.

Rules, stated once and applied everywhere here:

- **Wall times to instants**: ``cortex_runtime.walltime.local_instant``, the rule booking's
  availability uses: a wall time that does not exist (spring forward) moves forward to the
  transition instant (Berlin 2026-03-29 02:30 -> 03:00+02:00); an ambiguous one (fall back)
  takes its first occurrence (Berlin 2026-10-25 02:30 -> 02:30+02:00). Answers say which
  applied (``resolution``). For RRULE occurrences this differs from RFC 5545, which shifts a
  nonexistent time by the gap's length (02:30 -> 03:30): one rule for the whole system.
- **Calendar units** (days, weeks, months, years) move the local wall time in the zone and
  keep the time of day (a day across a DST change is 23 or 25 hours); a month/year step that
  lands past a month's end clamps to its last day (Jan 31 + 1 month = Feb 28/29).
  **Exact units** (seconds, minutes, hours) add elapsed time.
- **RRULE expansion** is bounded: at most ``MAX_OCCURRENCES`` (1000) occurrences (more is an
  error unless count/until/COUNT/UNTIL cut it), searched within ``SEARCH_YEARS`` (100) years
  of dtstart and at most ``MAX_PERIODS`` hourly/minutely/secondly periods (an error), so a
  rule that matches nothing cannot keep a gateway busy. Sub-daily frequencies step the wall
  clock too (FREQ=HOURLY across fall back gives the repeated hour once).
- **Durations** are elapsed time between instants; the wall-clock difference (what the clocks
  on the wall show, each end read in ``timezone`` or as written) is given beside it and
  differs across a DST change.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped]
from dateutil.rrule import rrule, rrulestr  # type: ignore[import-untyped]
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.formats import time_zones
from cortex_runtime.walltime import WallStatus, local_instant, local_wall, wall_status

MAX_OCCURRENCES = 1000
"""``expand_rrule`` refuses to list more occurrences than this."""
TRANSITION_HORIZON = timedelta(days=400)
"""How far ahead ``get_temporal_context`` looks for the next UTC offset change."""
_SCAN_STEP = timedelta(hours=6)

Resolution = Literal["exact", "nonexistent_moved_forward", "ambiguous_first_occurrence"]
_RESOLUTION: dict[WallStatus, Resolution] = {
    "exact": "exact",
    "nonexistent": "nonexistent_moved_forward",
    "ambiguous": "ambiguous_first_occurrence",
}
CalendarUnit = Literal["days", "weeks", "months", "years"]
ExactUnit = Literal["seconds", "minutes", "hours"]
Unit = Literal["seconds", "minutes", "hours", "days", "weeks", "months", "years"]
_CALENDAR_UNITS = frozenset(("days", "weeks", "months", "years"))
_EXACT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}

ZoneName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="An IANA time zone name, e.g. Europe/Berlin, America/New_York or UTC.",
        examples=["Europe/Berlin"],
    ),
]


class TemporalError(ValueError):
    """Input the time tools cannot work with; the message says what to send instead."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- shared pieces ---------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise TemporalError(
            f"{name!r} is not a time zone name: use an IANA name like Europe/Berlin."
        )
    if name in time_zones():  # the zones every service accepts
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # pragma: no cover - listed
            pass
    raise TemporalError(f"Unknown time zone {name!r}: use an IANA name like Europe/Berlin or UTC.")


def _offset_text(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise TemporalError(
            f"{what} {value.isoformat()} has no UTC offset: add one (e.g. +02:00 or Z)."
        )
    return value


class LocalTime(_Model):
    """One instant as it reads in a zone."""

    local: datetime = Field(description="The wall time in the zone, with its UTC offset.")
    utc: datetime = Field(description="The same instant in UTC.")
    timezone: str
    utc_offset: str = Field(description="The zone's UTC offset at that instant, e.g. +02:00.")
    abbreviation: str = Field(description="The zone's abbreviation then, e.g. CEST.")
    dst: bool = Field(description="Whether daylight saving time is in effect then.")


def _local_time(instant: datetime, tz: ZoneInfo) -> LocalTime:
    local = instant.astimezone(tz)
    offset = local.utcoffset() or timedelta()
    return LocalTime(
        local=local,
        utc=instant.astimezone(UTC),
        timezone=tz.key,
        utc_offset=_offset_text(offset),
        abbreviation=local.tzname() or "",
        dst=bool(local.dst()),
    )


def _resolve(wall: datetime, tz: ZoneInfo) -> tuple[datetime, Resolution]:
    """A naive wall time in ``tz`` as a UTC instant, by the system's one rule."""
    return local_instant(wall, tz), _RESOLUTION[wall_status(wall, tz)]


# --- get_temporal_context --------------------------------------------------------------------


class TemporalContextInput(_Model):
    timezone: ZoneName | None = Field(
        default=None, description="The zone to read the time in; UTC when left out."
    )


class DstTransition(_Model):
    """The next change of the zone's UTC offset."""

    at: datetime = Field(description="The instant of the change, in UTC.")
    local_before: datetime = Field(
        description="The wall time just before the change, with the offset before it."
    )
    local_after: datetime = Field(description="The wall time at the change, with the new offset.")
    offset_before: str
    offset_after: str
    abbreviation_before: str
    abbreviation_after: str
    dst_after: bool = Field(description="Whether daylight saving time is in effect after it.")
    shift_minutes: int = Field(
        description="How far the clocks move: positive forward (spring), negative back (fall)."
    )


class TemporalContext(_Model):
    now_utc: datetime
    now_local: datetime = Field(description="Now in the zone, with its UTC offset.")
    timezone: str
    utc_offset: str
    abbreviation: str
    dst: bool = Field(description="Whether daylight saving time is in effect now.")
    weekday: str = Field(description="The local day of the week, e.g. Monday.")
    next_transition: DstTransition | None = Field(
        description="The next UTC offset change within 400 days; null when the zone has none."
    )


def next_transition(tz: ZoneInfo, after: datetime) -> DstTransition | None:
    """The first change of ``tz``'s UTC offset after ``after`` within the horizon (sampled
    every 6 hours, then narrowed to the second: zones change at most once in 6 hours)."""
    start = after.astimezone(UTC)
    base = start.astimezone(tz).utcoffset()
    step_end = start
    limit = start + TRANSITION_HORIZON
    while step_end < limit:
        low, step_end = step_end, min(step_end + _SCAN_STEP, limit)
        if step_end.astimezone(tz).utcoffset() == base:
            continue
        low_s, high_s = 0, int((step_end - low).total_seconds())
        while high_s - low_s > 1:
            middle = (low_s + high_s) // 2
            if (low + timedelta(seconds=middle)).astimezone(tz).utcoffset() == base:
                low_s = middle
            else:
                high_s = middle
        at = low + timedelta(seconds=high_s)
        before, after_local = (at - timedelta(seconds=1)).astimezone(tz), at.astimezone(tz)
        offset_before = before.utcoffset() or timedelta()
        offset_after = after_local.utcoffset() or timedelta()
        return DstTransition(
            at=at,
            local_before=before,
            local_after=after_local,
            offset_before=_offset_text(offset_before),
            offset_after=_offset_text(offset_after),
            abbreviation_before=before.tzname() or "",
            abbreviation_after=after_local.tzname() or "",
            dst_after=bool(after_local.dst()),
            shift_minutes=int((offset_after - offset_before).total_seconds() // 60),
        )
    return None


def get_temporal_context(timezone: str | None, now: datetime) -> TemporalContext:
    tz = zone("UTC" if timezone is None else timezone)
    now = _aware(now, "now").astimezone(UTC)
    local = _local_time(now, tz)
    return TemporalContext(
        now_utc=now,
        now_local=local.local,
        timezone=tz.key,
        utc_offset=local.utc_offset,
        abbreviation=local.abbreviation,
        dst=local.dst,
        weekday=local.local.strftime("%A"),
        next_transition=next_transition(tz, now),
    )


# --- convert_timezone ------------------------------------------------------------------------


class ConvertTimezoneInput(_Model):
    datetime: dt.datetime = Field(
        description="ISO 8601 date-time; with an offset it is that instant, without one it is "
        "a wall time in from_zone.",
        examples=["2026-03-29T09:30:00+02:00", "2026-03-29T09:30:00"],
    )
    to_zone: ZoneName
    from_zone: ZoneName | None = Field(
        default=None,
        description="The zone a datetime without an offset is read in (required then; ignored "
        "for a datetime with an offset).",
    )


class ConvertedTime(_Model):
    source: LocalTime = Field(description="The instant as given (in from_zone for a wall time).")
    result: LocalTime = Field(description="The same instant in to_zone.")
    resolution: Resolution = Field(
        description="How a wall time without an offset was read: exact, or the rule applied "
        "when it does not exist (moved forward to the DST transition) or occurs twice (the "
        "first occurrence)."
    )


def convert_timezone(value: datetime, to_zone: str, from_zone: str | None = None) -> ConvertedTime:
    target = zone(to_zone)
    resolution: Resolution = "exact"
    if value.tzinfo is None or value.utcoffset() is None:
        if from_zone is None:
            raise TemporalError(f"{value.isoformat()} has no UTC offset: add one or say from_zone.")
        source_zone = zone(from_zone)
        instant, resolution = _resolve(value.replace(tzinfo=None), source_zone)
        source = _local_time(instant, source_zone)
    else:
        instant = value.astimezone(UTC)
        source = (
            _local_time(instant, zone(from_zone))
            if from_zone is not None
            else _fixed_local_time(value)
        )
    return ConvertedTime(source=source, result=_local_time(instant, target), resolution=resolution)


def _fixed_local_time(value: datetime) -> LocalTime:
    offset = value.utcoffset() or timedelta()
    return LocalTime(
        local=value,
        utc=value.astimezone(UTC),
        timezone=_offset_text(offset) if offset else "UTC",
        utc_offset=_offset_text(offset),
        abbreviation=value.tzname() or _offset_text(offset),
        dst=bool(value.dst()),
    )


# --- compute_duration ------------------------------------------------------------------------


class ComputeDurationInput(_Model):
    start: AwareDatetime = Field(description="ISO 8601 date-time with a UTC offset.")
    end: AwareDatetime = Field(description="ISO 8601 date-time with a UTC offset.")
    timezone: ZoneName | None = Field(
        default=None,
        description="Read both ends' wall clocks in this zone; as written when left out.",
    )


class Breakdown(_Model):
    negative: bool = Field(description="True when end is before start.")
    days: int = Field(description="Whole 24-hour days.")
    hours: int
    minutes: int
    seconds: float


class Duration(_Model):
    seconds: float = Field(description="Exact elapsed seconds (negative when end < start).")
    minutes: float
    hours: float
    days: float = Field(description="Elapsed time in 24-hour days.")
    breakdown: Breakdown
    human: str = Field(description="The elapsed time in words, e.g. '1 day, 2 hours'.")
    wall_clock_seconds: float = Field(
        description="The difference of the wall-clock readings of the two ends."
    )
    wall_clock_differs: bool = Field(
        description="True when the wall clocks moved more or less than the elapsed time (a "
        "DST change or different offsets between the ends)."
    )
    note: str


def _number(value: float) -> float:
    return float(int(value)) if float(value).is_integer() else round(value, 6)


def _human(total: timedelta) -> tuple[Breakdown, str]:
    negative = total < timedelta(0)
    rest = -total if negative else total
    days, seconds = rest.days, rest.seconds + rest.microseconds / 1_000_000
    hours, seconds_left = divmod(seconds, 3600)
    minutes, secs = divmod(seconds_left, 60)
    breakdown = Breakdown(
        negative=negative, days=days, hours=int(hours), minutes=int(minutes), seconds=_number(secs)
    )
    parts = [
        f"{n:g} {unit}{'' if n == 1 else 's'}"
        for n, unit in (
            (days, "day"),
            (int(hours), "hour"),
            (int(minutes), "minute"),
            (_number(secs), "second"),
        )
        if n
    ]
    text = ", ".join(parts) or "0 seconds"
    return breakdown, (f"minus {text}" if negative else text)


def compute_duration(start: datetime, end: datetime, timezone: str | None = None) -> Duration:
    start, end = _aware(start, "start"), _aware(end, "end")
    elapsed = end - start  # aware - aware: exact elapsed time
    if timezone is not None:
        tz: tzinfo = zone(timezone)
        wall = local_wall(end, tz) - local_wall(start, tz)
    else:
        wall = end.replace(tzinfo=None) - start.replace(tzinfo=None)
    seconds = elapsed.total_seconds()
    breakdown, human = _human(elapsed)
    differs = wall != elapsed
    if differs:
        more = "more" if wall > elapsed else "less"
        note = (
            f"Elapsed {human}; the wall clocks moved {_human(wall)[1]} "
            f"({_human(abs(wall - elapsed))[1]} {more}: a DST change or different UTC "
            "offsets lie between the ends)."
        )
    else:
        note = f"Elapsed {human}; the wall clocks moved the same."
    return Duration(
        seconds=_number(seconds),
        minutes=_number(seconds / 60),
        hours=_number(seconds / 3600),
        days=_number(seconds / 86400),
        breakdown=breakdown,
        human=human,
        wall_clock_seconds=_number(wall.total_seconds()),
        wall_clock_differs=differs,
        note=note,
    )


# --- adjust_timestamp ------------------------------------------------------------------------


class AdjustTimestampInput(_Model):
    timestamp: datetime = Field(
        description="ISO 8601 date-time; without an offset it is a wall time in timezone."
    )
    amount: int = Field(
        ge=-1_000_000, le=1_000_000, description="How many units to add; negative subtracts."
    )
    unit: Unit = Field(
        description="seconds/minutes/hours add exact elapsed time; days/weeks/months/years "
        "move the wall time in timezone and keep the time of day."
    )
    timezone: ZoneName


class AdjustedTime(_Model):
    input: LocalTime = Field(description="The timestamp as read in timezone.")
    result: LocalTime
    kind: Literal["elapsed", "calendar"] = Field(
        description="elapsed: exact time added; calendar: the local wall time moved."
    )
    resolution: Resolution = Field(
        description="For a calendar step: exact, or the rule applied when the resulting wall "
        "time does not exist (moved forward to the DST transition) or occurs twice (the "
        "first occurrence)."
    )
    clamped_to_month_end: bool = Field(
        description="True when a months/years step landed past a month's end and took its "
        "last day (Jan 31 + 1 month = Feb 28 or 29)."
    )
    elapsed_seconds: float = Field(description="The exact time between input and result.")


def adjust_timestamp(timestamp: datetime, amount: int, unit: str, timezone: str) -> AdjustedTime:
    tz = zone(timezone)
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        start, _ = _resolve(timestamp.replace(tzinfo=None), tz)
    else:
        start = timestamp.astimezone(UTC)
    clamped = False
    resolution: Resolution = "exact"
    try:
        if unit in _EXACT_SECONDS:
            result = start + timedelta(seconds=amount * _EXACT_SECONDS[unit])
            kind: Literal["elapsed", "calendar"] = "elapsed"
        elif unit in _CALENDAR_UNITS:
            wall = local_wall(start, tz)
            moved = wall + relativedelta(**{unit: amount})
            clamped = unit in ("months", "years") and moved.day != wall.day
            result, resolution = _resolve(moved, tz)
            kind = "calendar"
        else:
            raise TemporalError(
                f"Unknown unit {unit!r}: use seconds, minutes, hours, days, weeks, months or years."
            )
        result_local = _local_time(result, tz)
    except (OverflowError, ValueError) as error:
        if isinstance(error, TemporalError):
            raise
        raise TemporalError(
            f"{amount} {unit} from {start.isoformat()} leaves the years 1 to 9999."
        ) from None
    return AdjustedTime(
        input=_local_time(start, tz),
        result=result_local,
        kind=kind,
        resolution=resolution,
        clamped_to_month_end=clamped,
        elapsed_seconds=_number((result - start).total_seconds()),
    )


# --- expand_rrule ----------------------------------------------------------------------------


class ExpandRruleInput(_Model):
    rrule: str = Field(
        min_length=1,
        max_length=1000,
        description="One RFC 5545 RRULE, with or without the 'RRULE:' prefix, e.g. "
        "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5.",
    )
    dtstart: datetime = Field(
        description="The first occurrence: a wall time in timezone (an offset is converted to "
        "the zone first)."
    )
    timezone: ZoneName
    count: int | None = Field(
        default=None,
        ge=1,
        le=MAX_OCCURRENCES,
        description=f"At most this many occurrences (1 to {MAX_OCCURRENCES}).",
    )
    until: datetime | None = Field(
        default=None,
        description="No occurrence after this (inclusive); without an offset a wall time in "
        "timezone.",
    )


class Occurrence(_Model):
    start: datetime = Field(description="The occurrence in the zone, with its UTC offset.")
    start_utc: datetime
    utc_offset: str
    resolution: Resolution = Field(
        description="exact, or the rule applied to a wall time the DST change skipped or repeated."
    )


class Occurrences(_Model):
    timezone: str
    rrule: str
    count: int
    occurrences: list[Occurrence]
    note: str


_UNTIL = re.compile(r"(?:^|;)UNTIL=([^;]*)", re.IGNORECASE)
_COUNT = re.compile(r"(?:^|;)COUNT=([^;]*)", re.IGNORECASE)
SEARCH_YEARS = 100
MAX_PERIODS = 20_000
"""``expand_rrule`` looks for occurrences within this many years of dtstart: a rule that
matches nothing (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) ends there instead of running to 9999."""
_FORBIDDEN_PARTS = re.compile(r"(?:^|;)\s*(DTSTART|TZID|RDATE|EXDATE|EXRULE)\b", re.IGNORECASE)


def _rule_until(text: str, tz: ZoneInfo) -> datetime:
    """An UTC ``Z`` UNTIL is that instant; a local one a wall time in ``tz``; a date the end
    of that day in ``tz`` (inclusive)."""
    value = text.strip().upper()
    try:
        if re.fullmatch(r"\d{8}T\d{6}Z", value):
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if re.fullmatch(r"\d{8}T\d{6}", value):
            return local_instant(datetime.strptime(value, "%Y%m%dT%H%M%S"), tz)
        if re.fullmatch(r"\d{8}", value):
            day = datetime.strptime(value, "%Y%m%d").date()
            return local_instant(datetime.combine(day, datetime.max.time()), tz)
    except ValueError:
        pass
    raise TemporalError(
        f"UNTIL={text} is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS, Z for UTC)."
    )


class _SearchEnded(Exception):
    """The rule's expansion reached the year after the search horizon."""


class _BoundedRule(rrule):  # type: ignore[misc]
    """An rrule whose expansion stops after ``last_year`` and after ``MAX_PERIODS`` periods
    of a sub-daily FREQ.

    dateutil checks UNTIL and COUNT only on a match, so a rule that matches nothing
    (FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30, FREQ=SECONDLY;BYSETPOS=2) runs to the year 9999
    (seconds to hours of CPU). Its iterator rebuilds its per-year masks on entering a year,
    reading ``_byweekno`` there, and builds each hourly/minutely/secondly period's times
    reading ``_tzinfo``: those reads are where the work is checked."""

    last_year = 9999
    periods = 0

    @property
    def _tzinfo(self) -> object:
        self.periods += 1
        if self.periods > MAX_PERIODS:
            raise TemporalError(
                f"The RRULE needs more than {MAX_PERIODS} hourly/minutely/secondly periods to "
                "find its occurrences: use a coarser FREQ or fewer BY parts."
            )
        return self.__dict__["_tzinfo"]

    @_tzinfo.setter
    def _tzinfo(self, value: object) -> None:
        self.__dict__["_tzinfo"] = value

    @property
    def _byweekno(self) -> object:
        caller = sys._getframe(1)
        if caller.f_code.co_name == "rebuild" and caller.f_locals.get("year", 0) > self.last_year:
            raise _SearchEnded
        return self.__dict__["_byweekno"]

    @_byweekno.setter
    def _byweekno(self, value: object) -> None:
        self.__dict__["_byweekno"] = value


def _bounded(rule: rrule, last_year: int) -> _BoundedRule:
    bounded: _BoundedRule = _BoundedRule.__new__(_BoundedRule)
    bounded.__dict__.update(rule.__dict__)
    bounded.last_year = last_year
    return bounded


def _parse_rule(body: str, text: str, start_wall: datetime) -> rrule:
    if not body or "\n" in body or "\r" in body or _FORBIDDEN_PARTS.search(body):
        raise TemporalError(
            "Send one RRULE (e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=4); dtstart and timezone are "
            "their own arguments."
        )
    try:
        rule = rrulestr(body, dtstart=start_wall)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise TemporalError(f"Invalid RRULE {text!r}: {error}.") from None
    if not isinstance(rule, rrule):  # pragma: no cover - one RRULE line parses to an rrule
        raise TemporalError(f"Invalid RRULE {text!r}.")
    return rule


def _start_wall(dtstart: datetime, tz: ZoneInfo) -> datetime:
    """dtstart as a wall time in ``tz`` (a naive one is one already), to the second."""
    if dtstart.tzinfo is None or dtstart.utcoffset() is None:
        return dtstart.replace(tzinfo=None, microsecond=0)
    return local_wall(dtstart, tz).replace(microsecond=0)


def _take_bounds(
    rule_text: str, tz: ZoneInfo, until: datetime | None
) -> tuple[str, datetime | None, int | None]:
    """The rule without its UNTIL and COUNT, which are applied here (UNTIL as an instant,
    so a UTC one works with a wall-time dtstart): the body, the earliest bound (the rule's
    UNTIL or ``until``) and the rule's COUNT."""
    body = rule_text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    bounds: list[datetime] = []
    found = _UNTIL.search(body)
    if found is not None:
        bounds.append(_rule_until(found.group(1), tz))
        body = (body[: found.start()] + body[found.end() :]).strip().strip(";")
    if until is not None:
        if until.tzinfo is None or until.utcoffset() is None:
            bounds.append(local_instant(until.replace(tzinfo=None), tz))
        else:
            bounds.append(until.astimezone(UTC))
    rule_count: int | None = None
    found = _COUNT.search(body)
    if found is not None:
        if not found.group(1).strip().isdigit() or int(found.group(1)) < 1:
            raise TemporalError(f"COUNT={found.group(1)} is not a whole number of at least 1.")
        rule_count = int(found.group(1))
        body = (body[: found.start()] + body[found.end() :]).strip().strip(";")
    if not body:
        raise TemporalError("Send one RRULE with its FREQ, e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=4.")
    return body, min(bounds) if bounds else None, rule_count


def _occurrences(
    rule: rrule, tz: ZoneInfo, bound: datetime | None, limit: int | None
) -> list[Occurrence]:
    """The rule's wall times resolved in ``tz``, up to ``bound`` and ``limit``."""
    occurrences: list[Occurrence] = []
    seen: set[datetime] = set()
    try:
        for wall in rule:
            instant, resolution = _resolve(wall, tz)
            if (bound is not None and instant > bound) or len(occurrences) == limit:
                break
            if instant in seen:  # walls in one skipped hour all move to the transition
                continue
            if len(occurrences) == MAX_OCCURRENCES:
                raise TemporalError(
                    f"The rule has more than {MAX_OCCURRENCES} occurrences: add COUNT or "
                    "UNTIL, or send count or until."
                )
            seen.add(instant)
            local = instant.astimezone(tz)
            occurrences.append(
                Occurrence(
                    start=local,
                    start_utc=instant,
                    utc_offset=_offset_text(local.utcoffset() or timedelta()),
                    resolution=resolution,
                )
            )
    except _SearchEnded:
        pass
    except (OverflowError, ValueError) as error:
        if isinstance(error, TemporalError):
            raise
        raise TemporalError(f"The RRULE cannot be expanded: {error}.") from None
    return occurrences


def expand_rrule(
    rule_text: str,
    dtstart: datetime,
    timezone: str,
    count: int | None = None,
    until: datetime | None = None,
) -> Occurrences:
    tz = zone(timezone)
    if count is not None and until is not None:
        raise TemporalError("Send count or until, not both.")
    if count is not None and not 1 <= count <= MAX_OCCURRENCES:
        raise TemporalError(f"count must be 1 to {MAX_OCCURRENCES}.")
    start_wall = _start_wall(dtstart, tz)
    body, bound, rule_count = _take_bounds(rule_text, tz, until)
    # dateutil gets the search horizon as UNTIL
    if start_wall.year + SEARCH_YEARS > 9999:
        horizon = datetime(9999, 12, 31, 23, 59, 59)
    else:
        horizon = start_wall + relativedelta(years=SEARCH_YEARS)
    rule = _parse_rule(f"{body};UNTIL={horizon:%Y%m%dT%H%M%S}", rule_text, start_wall)
    rule = _bounded(rule, horizon.year)
    limits = [n for n in (count, rule_count) if n is not None]
    occurrences = _occurrences(rule, tz, bound, min(limits) if limits else None)
    return Occurrences(
        timezone=tz.key,
        rrule=rule_text,
        count=len(occurrences),
        occurrences=occurrences,
        note="Occurrences keep dtstart's wall time in the zone; a wall time a DST change "
        "skips moves forward to the transition, a repeated one takes its first occurrence. "
        f"Searched up to {SEARCH_YEARS} years after dtstart.",
    )
