"""Local wall times and instants: the one rule every service maps a wall time by.

A wall time that does not exist (spring forward) moves forward to the first instant that
exists, the transition itself; an ambiguous one (fall back) takes its first occurrence
(``fold=0``). Booking's availability engine (working-hour edges, local midnights) and the
gateway's time tools (``gateway.temporal``) both use it. Pure: stdlib only, no I/O, so the
services' domain code may import it (``cortex_runtime.walltime`` names the same functions).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

WallStatus = Literal["exact", "nonexistent", "ambiguous"]


def local_wall(instant: datetime, zone: tzinfo) -> datetime:
    """The naive wall time ``instant`` shows in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def wall_status(wall: datetime, zone: tzinfo) -> WallStatus:
    """Whether the naive wall time ``wall`` occurs once in ``zone``, never or twice."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if local_wall(first, zone) != wall and local_wall(second, zone) != wall:
        return "nonexistent"
    return "exact" if first == second else "ambiguous"


def local_instant(wall: datetime, zone: tzinfo) -> datetime:
    """The UTC instant of a naive local wall time: a skipped time moves forward to the first
    instant that exists (the transition), a repeated one takes its first occurrence."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if local_wall(first, zone) == wall:
        return first
    candidates = sorted((first, wall.replace(tzinfo=zone, fold=1).astimezone(UTC)))
    low, high = candidates
    if not local_wall(low, zone) < wall <= local_wall(high, zone):
        return high
    # The first instant whose wall time reaches ``wall``; transitions fall on whole seconds.
    low_seconds, high_seconds = 0, int((high - low).total_seconds())
    while high_seconds - low_seconds > 1:
        middle = (low_seconds + high_seconds) // 2
        if local_wall(low + timedelta(seconds=middle), zone) >= wall:
            high_seconds = middle
        else:
            low_seconds = middle
    return low + timedelta(seconds=high_seconds)
