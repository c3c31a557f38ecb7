"""The availability engine: free windows of a day and the check a booked slot must pass.

Pure domain code (stdlib and the contracts' pure rules, no I/O). Every computation runs on
UTC instants; local wall times exist only at the edges: reading the owner's working hours,
cutting a calendar day in the requested zone, and converting the answer back to that zone.

One rule decides what is free, :func:`free_intervals`:

    free = (working time  intersected with  [now + min_notice, now + max_advance_days])
           minus  every busy interval widened by ``buffer_minutes`` on both sides

:func:`free_windows` shows that set for one local calendar day; :func:`check_slot` accepts a
slot exactly when it lies inside that set. So availability shows what booking accepts, with one
documented difference: ``free_windows`` cuts the free time at the requested day's midnights
(a day's answer never leaves the day) and then keeps the pieces of at least the duration, so a
free stretch that straddles local midnight and is shorter than the duration on either side is
not shown on either day, while ``check_slot`` still accepts a slot across midnight that fits
into it. Every slot that lies within one local day of the requested zone passes ``check_slot``
if and only if it lies inside a window ``free_windows`` returns for that day with
``duration_minutes`` equal to the slot's length.

Local wall times are mapped to instants the same way everywhere (working-hour edges, local
midnights): a wall time that does not exist (spring forward) moves forward to the first instant
that exists, the transition itself; an ambiguous one (fall back) takes its first occurrence
(``fold=0``): ``contracts.walltime.local_instant``, the rule the gateway's time tools
use too. A calendar day therefore lasts 23 or 25 hours on DST days.

Max advance is counted in exact days of 24 hours from ``now``. Datetimes returned by
``free_windows`` carry the requested zone so that ``isoformat()`` prints the right offset;
compare them by instant (``.astimezone(UTC)``), as Python compares two datetimes that share a
``tzinfo`` by wall time, which is wrong inside a repeated hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.booking import EARLIEST, FIRST_DAY, LAST_DAY, LATEST
from contracts.formats import MINUTES_PER_DAY as _MINUTES_PER_DAY
from contracts.formats import WEEKDAYS, parse_hhmm
from contracts.walltime import local_instant as _instant

Interval = tuple[datetime, datetime]

DEFAULT_WORKING_HOURS: Mapping[str, Sequence[tuple[str, str]]] = {
    day: (("09:00", "17:00"),) for day in WEEKDAYS[:5]
}
MIN_SLOT_MINUTES = 5
MAX_SLOT_MINUTES = 720

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Rules:
    """An owner's booking rules, as the availability engine reads them.

    ``working_hours`` maps ``"mon"``..``"sun"`` to local ``("HH:MM", "HH:MM")`` intervals; an
    end at or before its start crosses midnight into the next day (so ``("00:00", "00:00")`` is
    a whole 24-hour stretch), ``"24:00"`` is allowed as an end. Intervals may touch or overlap
    (they are merged). Weekdays left out are not worked.
    """

    timezone: str
    working_hours: Mapping[str, Sequence[tuple[str, str]]] = field(
        default_factory=lambda: dict(DEFAULT_WORKING_HOURS)
    )
    buffer_minutes: int = 0
    min_notice_hours: int = 0
    max_advance_days: int = 60

    def __post_init__(self) -> None:
        _zone(self.timezone)
        for name in ("buffer_minutes", "min_notice_hours", "max_advance_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative whole number, not {value!r}.")
        unknown = sorted(set(self.working_hours) - set(WEEKDAYS))
        if unknown:
            raise ValueError(f"Unknown weekday {unknown[0]!r}: use mon, tue, ..., sun.")
        normalised: dict[str, tuple[tuple[str, str], ...]] = {}
        for day in WEEKDAYS:
            pairs = tuple((start, end) for start, end in self.working_hours.get(day, ()))
            for start, end in pairs:
                if _minute_of_day(start) == _MINUTES_PER_DAY:
                    raise ValueError(f"{day}: a working interval cannot start at 24:00.")
                _minute_of_day(end)
            if pairs:
                normalised[day] = pairs
        object.__setattr__(self, "working_hours", normalised)


class SlotRefused(ValueError):
    """A slot the rules refuse. ``code`` is for machines, ``str(exc)`` a sentence for people.

    Codes: ``date_out_of_range``, ``invalid_range``, ``invalid_length``, ``too_soon``,
    ``too_far``, ``outside_working_hours``, ``slot_unavailable``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_day(day: date) -> None:
    """Refuse a date outside the calendar this engine works in (``FIRST_DAY``..``LAST_DAY``):
    near the ends of what dates can hold, a day's bounds in a far zone do not exist."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise SlotRefused(
            "date_out_of_range",
            f"The date must be between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}.",
        )


def check_moments(*moments: datetime) -> None:
    """Refuse times without an offset, or outside ``[EARLIEST, LATEST)``; compared without
    converting them, since ``0001-01-01T00:00+14:00`` has no UTC value a datetime can hold."""
    for moment in moments:
        if moment.utcoffset() is None:
            raise SlotRefused("invalid_range", "Start and end must carry a time zone offset.")
        if not EARLIEST <= moment < LATEST:
            raise SlotRefused(
                "date_out_of_range",
                f"Times must lie between {EARLIEST.date().isoformat()} and "
                f"{LATEST.date().isoformat()} (UTC).",
            )


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """UTC intervals, sorted, overlapping and touching ones joined, empty ones dropped."""
    pairs = ((_utc(start), _utc(end)) for start, end in intervals)
    ordered = sorted((start, end) for start, end in pairs if start < end)
    merged: list[Interval] = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def local_day_bounds(day: date, tz: str) -> Interval:
    """``[local midnight, next local midnight)`` of ``day`` in ``tz``, as UTC instants."""
    check_day(day)
    zone = _zone(tz)
    return _instant(datetime.combine(day, time()), zone), _instant(
        datetime.combine(day + _DAY, time()), zone
    )


def working_intervals(rules: Rules, start: datetime, end: datetime) -> list[Interval]:
    """The owner's working time inside ``[start, end)``: merged, UTC, clipped to the range."""
    lo, hi = _utc(start, "start"), _utc(end, "end")
    if hi <= lo:
        return []
    zone = _zone(rules.timezone)
    first = lo.astimezone(zone).date() - _DAY  # an interval of the day before may cross midnight
    last = hi.astimezone(zone).date()
    spans: list[Interval] = []
    day = first
    while day <= last:
        for start_text, end_text in rules.working_hours.get(WEEKDAYS[day.weekday()], ()):
            begin_minute, end_minute = _minute_of_day(start_text), _minute_of_day(end_text)
            if end_minute <= begin_minute:
                end_minute += _MINUTES_PER_DAY
            midnight = datetime.combine(day, time())
            span_start = _instant(midnight + timedelta(minutes=begin_minute), zone)
            span_end = _instant(midnight + timedelta(minutes=end_minute), zone)
            spans.append((max(span_start, lo), min(span_end, hi)))
        day += _DAY
    return merge(spans)


def free_intervals(
    rules: Rules,
    start: datetime,
    end: datetime,
    busy: Iterable[Interval],
    now: datetime,
) -> list[Interval]:
    """All the bookable time inside ``[start, end)``, merged, UTC, whatever its length.

    The one rule shared by :func:`free_windows` and :func:`check_slot`.
    """
    lo, hi = _utc(start, "start"), _utc(end, "end")
    now = _utc(now, "now")
    lo = max(lo, now + timedelta(hours=rules.min_notice_hours))
    hi = min(hi, now + timedelta(days=rules.max_advance_days))
    if hi <= lo:
        return []
    buffer = timedelta(minutes=rules.buffer_minutes)
    blocked = merge(
        (_utc(b_start, "busy start") - buffer, _utc(b_end, "busy end") + buffer)
        for b_start, b_end in busy
    )
    free: list[Interval] = []
    for work_start, work_end in working_intervals(rules, lo, hi):
        cursor = work_start
        for block_start, block_end in blocked:
            if block_end <= cursor:
                continue
            if block_start >= work_end:
                break
            if cursor < block_start:
                free.append((cursor, block_start))
            cursor = max(cursor, block_end)
        if cursor < work_end:
            free.append((cursor, work_end))
    return merge(free)


def free_windows(
    rules: Rules,
    day: date,
    tz: str,
    duration_minutes: int,
    busy: Iterable[Interval],
    now: datetime,
) -> list[Interval]:
    """The free windows of local calendar day ``day`` in zone ``tz``, in that zone.

    Each window is at least ``duration_minutes`` long, inside the owner's working hours, not
    before ``now + min_notice``, not after ``now + max_advance_days``, and clear of every busy
    interval widened by the buffer. Windows are sorted and disjoint, and never leave the day:
    free time across local midnight is cut there (see the module documentation).
    """
    if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int):
        raise ValueError("duration_minutes must be a whole number of minutes.")
    if duration_minutes < 1:
        raise ValueError("duration_minutes must be at least 1.")
    zone = _zone(tz)
    day_start, day_end = local_day_bounds(day, tz)
    duration = timedelta(minutes=duration_minutes)
    return [
        (start.astimezone(zone), end.astimezone(zone))
        for start, end in free_intervals(rules, day_start, day_end, busy, now)
        if end - start >= duration
    ]


def check_slot(
    rules: Rules,
    start: datetime,
    end: datetime,
    busy: Iterable[Interval],
    now: datetime,
) -> None:
    """Accept ``[start, end)`` exactly when it lies inside :func:`free_intervals`.

    Raises :class:`SlotRefused` with the first reason that applies, in this order:
    ``invalid_range`` (no offset), ``date_out_of_range``, ``invalid_range``,
    ``invalid_length``, ``too_soon``, ``too_far``, ``outside_working_hours``,
    ``slot_unavailable``.
    """
    check_moments(start, end)
    lo, hi = _utc(start), _utc(end)
    if hi <= lo:
        raise SlotRefused("invalid_range", "The end must come after the start.")
    length = hi - lo
    if length % timedelta(minutes=1) or not (
        timedelta(minutes=MIN_SLOT_MINUTES) <= length <= timedelta(minutes=MAX_SLOT_MINUTES)
    ):
        raise SlotRefused(
            "invalid_length",
            f"A booking lasts a whole number of minutes, from {MIN_SLOT_MINUTES} to "
            f"{MAX_SLOT_MINUTES}.",
        )
    now = _utc(now, "now")
    busy = list(busy)
    if free_intervals(rules, lo, hi, busy, now) == [(lo, hi)]:
        return
    earliest = now + timedelta(hours=rules.min_notice_hours)
    latest = now + timedelta(days=rules.max_advance_days)
    if lo < earliest:
        raise SlotRefused(
            "too_soon",
            f"Bookings need {rules.min_notice_hours} hours' notice: the earliest start is "
            f"{_print(earliest, rules.timezone)}.",
        )
    if hi > latest:
        raise SlotRefused(
            "too_far",
            f"Bookings open at most {rules.max_advance_days} days ahead: the latest end is "
            f"{_print(latest, rules.timezone)}.",
        )
    if working_intervals(rules, lo, hi) != [(lo, hi)]:
        raise SlotRefused("outside_working_hours", "The slot is outside the owner's working hours.")
    raise SlotRefused("slot_unavailable", "The slot is no longer available.")


def _minute_of_day(text: str) -> int:
    """Minutes after midnight of ``HH:MM`` (``24:00`` allowed); a ``ValueError`` otherwise."""
    return parse_hhmm(text, allow_24=True)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone.") from exc


def _utc(value: datetime, what: str = "a datetime") -> datetime:
    """The same instant in UTC; a naive datetime is refused, never read as server-local."""
    if value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime.")
    return value.astimezone(UTC)


def _print(instant: datetime, tz: str) -> str:
    return instant.astimezone(_zone(tz)).isoformat(timespec="minutes")
