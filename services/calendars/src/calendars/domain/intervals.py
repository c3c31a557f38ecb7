"""Half-open time intervals ``[start, end)``: merging, clipping, busy time and free gaps.

All datetimes are expected to be timezone-aware (comparisons between aware datetimes are
by instant, whatever their zones). Intervals with ``end <= start`` are empty and dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from calendars.domain.remote import RemoteEvent

Interval = tuple[datetime, datetime]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals joined and empty ones dropped."""
    ordered = sorted((start, end) for start, end in intervals if start < end)
    merged: list[Interval] = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    """Each interval cut to ``[start, end)``, in input order; what becomes empty is dropped."""
    clipped: list[Interval] = []
    for interval_start, interval_end in intervals:
        lo, hi = max(interval_start, start), min(interval_end, end)
        if lo < hi:
            clipped.append((lo, hi))
    return clipped


def busy_from_events(
    events: Iterable[RemoteEvent], start: datetime, end: datetime
) -> list[Interval]:
    """The merged busy time of the events that block, inside ``[start, end)``."""
    return merge(clip(((event.start, event.end) for event in events if event.blocks), start, end))


def subtract(window: Interval, busy: Iterable[Interval]) -> list[Interval]:
    """The free gaps of ``window``: the parts not covered by any ``busy`` interval, sorted."""
    window_start, window_end = window
    free: list[Interval] = []
    cursor = window_start
    for lo, hi in merge(clip(busy, window_start, window_end)):
        if cursor < lo:
            free.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < window_end:
        free.append((cursor, window_end))
    return free
