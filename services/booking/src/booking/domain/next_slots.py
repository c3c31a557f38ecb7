"""The next free slots a refused booking is offered (pure domain code, no I/O).

They come from the windows :func:`availability.free_windows` shows, so every slot offered is
one the availability answer shows for its day and :func:`availability.check_slot` accepts:
one rule for what is free.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.domain.availability import Interval, Rules, free_windows, local_day_bounds
from contracts.booking import LAST_DAY

COUNT = 3
DAYS = 14
GRID_MINUTES = 5

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def next_slots(
    rules: Rules,
    after: datetime,
    duration_minutes: int,
    tz: str,
    busy: Iterable[Interval],
    now: datetime,
    *,
    count: int = COUNT,
    days: int = DAYS,
) -> list[Interval]:
    """The first ``count`` free slots of ``duration_minutes`` that start after ``after``.

    Searched day by day (local days of ``tz``, from the day of ``after``, at most ``days``
    days and never past max advance) inside the windows ``free_windows`` shows for that
    length. Slots start on a grid of ``GRID_MINUTES`` and follow one another inside a
    window; they carry the zone ``tz``. ``busy`` must cover those days.
    """
    zone = ZoneInfo(tz)
    length = timedelta(minutes=duration_minutes)
    grid = timedelta(minutes=GRID_MINUTES)
    now = now.astimezone(UTC)
    earliest = max(
        after.astimezone(UTC) + timedelta(microseconds=1),
        now + timedelta(hours=rules.min_notice_hours),
    )
    horizon = now + timedelta(days=rules.max_advance_days)
    busy = list(busy)
    found: list[Interval] = []
    day = earliest.astimezone(zone).date()
    for _ in range(days):
        if day > LAST_DAY or local_day_bounds(day, tz)[0] >= horizon:
            break
        for window_start, window_end in free_windows(rules, day, tz, duration_minutes, busy, now):
            cursor = max(window_start.astimezone(UTC), earliest)
            cursor += -(cursor - _EPOCH) % grid  # up to the grid
            while cursor + length <= window_end.astimezone(UTC) and len(found) < count:
                found.append((cursor.astimezone(zone), (cursor + length).astimezone(zone)))
                cursor += length
            if len(found) >= count:
                return found
        day += timedelta(days=1)
    return found
