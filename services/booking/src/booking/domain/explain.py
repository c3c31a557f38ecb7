"""Why time is not bookable: a local day cut into the free windows availability shows and
explained busy blocks.

Pure domain code next to :func:`booking.domain.availability.free_intervals`, and built on
it: :func:`explain_day` takes the same inputs as
:func:`~booking.domain.availability.free_windows` (the busy intervals carry a ``source``
each: what the caller wants a reason to name) and returns

* ``free``: exactly the windows ``free_windows`` returns for those inputs, and
* ``busy``: the rest of the day, ``[local midnight, next local midnight)``, as blocks,
  each with every reason that holds throughout it.

Together they partition the day: sorted, disjoint, nothing left over. Blocks are maximal:
two neighbouring blocks never have the same reasons. A block's reasons, in this order:

* :class:`OutsideWorkingHours`: not in the owner's working hours;
* :class:`MinNotice`: before ``now + min_notice`` (the past included);
* :class:`MaxAdvance`: at or after ``now + max_advance_days``;
* :class:`Occupied`: inside a busy interval (its ``source``), one per interval;
* :class:`Buffer`: within ``buffer_minutes`` before (``before``) or after (``after``) a busy
  interval, one per interval and side;
* :class:`TooShort`: free time, but a free stretch shorter than the duration (cut at the
  day's midnights, as ``free_windows`` cuts it). Its only reason, then.

Every point of the day that ``free_intervals`` does not count as free has at least one of the
first five (that is the rule ``free_intervals`` applies), and every free point outside the
windows is in a stretch too short: so every block has a reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Generic, TypeVar

from booking.domain.availability import (
    Interval,
    Rules,
    _utc,
    _zone,
    free_intervals,
    local_day_bounds,
    working_intervals,
)

S = TypeVar("S", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Busy(Generic[S]):
    """A busy interval and what it is (an event, a booking, a source in error)."""

    start: datetime
    end: datetime
    source: S


@dataclass(frozen=True, slots=True)
class OutsideWorkingHours:
    pass


@dataclass(frozen=True, slots=True)
class MinNotice:
    hours: int
    earliest: datetime  # the first bookable instant (UTC)


@dataclass(frozen=True, slots=True)
class MaxAdvance:
    days: int
    latest: datetime  # the bookable time ends here (UTC)


@dataclass(frozen=True, slots=True)
class Occupied(Generic[S]):
    source: S


@dataclass(frozen=True, slots=True)
class Buffer(Generic[S]):
    """The buffer kept after (``after``) or before (``before``) a busy interval."""

    minutes: int
    after: S | None = None
    before: S | None = None


@dataclass(frozen=True, slots=True)
class TooShort:
    free: timedelta  # the length of the free stretch this block is
    duration_minutes: int


Reason = OutsideWorkingHours | MinNotice | MaxAdvance | Occupied[S] | Buffer[S] | TooShort


@dataclass(frozen=True, slots=True)
class Block(Generic[S]):
    start: datetime
    end: datetime
    reasons: tuple[Reason[S], ...]


@dataclass(frozen=True, slots=True)
class DayPartition(Generic[S]):
    free: list[Interval]  # the windows, in the requested zone (free_windows' answer)
    busy: list[Block[S]]  # the rest of the day, in the requested zone


@dataclass(frozen=True, slots=True)
class _Zones(Generic[S]):
    """Where one busy interval holds time: itself, and its buffers before and after, each
    clipped to the widened interval ``free_intervals`` blocks (the same set, even for an
    interval that ends before it starts)."""

    source: S
    occupied: Interval
    before: Interval
    after: Interval


def explain_day(
    rules: Rules,
    day: date,
    tz: str,
    duration_minutes: int,
    busy: Iterable[Busy[S]],
    now: datetime,
) -> DayPartition[S]:
    """The day ``day`` in zone ``tz`` as free windows of at least ``duration_minutes`` and
    explained busy blocks (see the module documentation)."""
    if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int):
        raise ValueError("duration_minutes must be a whole number of minutes.")
    if duration_minutes < 1:
        raise ValueError("duration_minutes must be at least 1.")
    zone = _zone(tz)
    lo, hi = local_day_bounds(day, tz)
    now = _utc(now, "now")
    buffer = timedelta(minutes=rules.buffer_minutes)
    items = [(_utc(b.start, "busy start"), _utc(b.end, "busy end"), b.source) for b in busy]
    free = free_intervals(rules, lo, hi, [(start, end) for start, end, _ in items], now)
    duration = timedelta(minutes=duration_minutes)
    windows = [(start, end) for start, end in free if end - start >= duration]
    short = [(start, end) for start, end in free if end - start < duration]
    zones = [
        _Zones(
            source,
            (start, end),
            (start - buffer, min(start, end + buffer)),
            (max(end, start - buffer), end + buffer),
        )
        for start, end, source in sorted(items, key=lambda i: (i[0], i[1]))
        if start - buffer < hi and end + buffer > lo
    ]
    earliest = now + timedelta(hours=rules.min_notice_hours)
    latest = now + timedelta(days=rules.max_advance_days)
    working = working_intervals(rules, lo, hi)
    edges = {lo, hi, earliest, latest}
    for spans in (working, free):
        for start, end in spans:
            edges.update((start, end))
    for z in zones:
        edges.update((*z.occupied, *z.before, *z.after))
    points = sorted(p for p in edges if lo <= p <= hi)

    def reasons_at(t: datetime) -> tuple[Reason[S], ...]:
        found: list[Reason[S]] = []
        if not _inside(t, working):
            found.append(OutsideWorkingHours())
        if t < earliest:
            found.append(MinNotice(rules.min_notice_hours, earliest))
        if t >= latest:
            found.append(MaxAdvance(rules.max_advance_days, latest))
        found.extend(Occupied(z.source) for z in zones if _inside(t, [z.occupied]))
        for z in zones:
            if _inside(t, [z.before]):
                found.append(Buffer(rules.buffer_minutes, before=z.source))
            if _inside(t, [z.after]):
                found.append(Buffer(rules.buffer_minutes, after=z.source))
        found.extend(
            TooShort(end - start, duration_minutes) for start, end in short if start <= t < end
        )
        return tuple(found)

    blocks: list[Block[S]] = []
    for start, end in itertools.pairwise(points):
        if _inside(start, windows):
            continue
        reasons = reasons_at(start)
        if blocks and blocks[-1].end == start and blocks[-1].reasons == reasons:
            blocks[-1] = Block(blocks[-1].start, end, reasons)
        else:
            blocks.append(Block(start, end, reasons))
    return DayPartition(
        free=[(start.astimezone(zone), end.astimezone(zone)) for start, end in windows],
        busy=[Block(b.start.astimezone(zone), b.end.astimezone(zone), b.reasons) for b in blocks],
    )


def _inside(t: datetime, spans: Iterable[Interval]) -> bool:
    return any(start <= t < end for start, end in spans)
