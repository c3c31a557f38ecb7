"""The owner as calendars knows it: the zone its floating and all-day times are read in,
projected from identity's settings in version order."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "UTC"
"""The zone of an owner calendars has not heard of yet (or whose zone is unknown)."""


def known_zone(name: str) -> bool:
    """Identity accepts only IANA names; anything else is read as UTC rather than crash."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def is_newer(
    version: int,
    updated_at: datetime | None,
    held_version: int,
    held_updated_at: datetime | None,
) -> bool:
    """Events arrive out of order: apply only a newer version (by ``updated_at`` while
    neither side has a version yet)."""
    if version or held_version:
        return version > held_version
    return held_updated_at is None or (updated_at is not None and updated_at >= held_updated_at)
