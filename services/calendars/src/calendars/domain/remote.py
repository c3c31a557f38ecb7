"""What calendar providers tell calendars: their calendars, event occurrences, the changes
since a sync token, and an OAuth grant. Plain values, no I/O.

Times are timezone-aware; intervals are half-open ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RemoteCalendar:
    id: str  # the provider's stable id (CalDAV: the collection URL)
    name: str
    primary: bool = False
    writable: bool = True


@dataclass(frozen=True)
class RemoteEvent:
    """One occurrence (recurrences already expanded) as it affects availability."""

    uid: str  # iCalendar UID; with recurrence_id it identifies one occurrence
    start: datetime
    end: datetime
    summary: str = ""
    status: str = "confirmed"  # confirmed | tentative | cancelled
    transparent: bool = False  # TRANSP:TRANSPARENT / showAs free: does not block
    all_day: bool = False
    recurrence_id: str = ""  # empty for a non-recurring event
    object_key: str = ""  # the stored object it came from (CalDAV href); default: the uid
    # a floating or all-day event's wall-clock times (naive), when they are read in the
    # owner's zone: ``start``/``end`` are then computed again when that zone changes.
    # None for a time with its own zone (and for Google's all-day events, which are read in
    # the calendar's own zone)
    local_start: datetime | None = None
    local_end: datetime | None = None

    @property
    def key(self) -> str:
        return self.object_key or self.uid

    @property
    def blocks(self) -> bool:
        return self.status != "cancelled" and not self.transparent


@dataclass
class EventWindow:
    """The events of one calendar inside ``[start, end)`` and how to ask for changes later."""

    events: list[RemoteEvent]
    sync_token: str | None = None  # CalDAV sync-token / Google nextSyncToken / Graph deltaLink


@dataclass
class Changes:
    """What changed since a sync token: objects whose events must be replaced or removed."""

    changed: list[RemoteEvent] = field(default_factory=list)  # all occurrences of changed uids
    # object keys (RemoteEvent.key: CalDAV href, else uid) whose stored events are replaced
    changed_uids: set[str] = field(default_factory=set)
    removed_uids: set[str] = field(default_factory=set)  # object keys that are gone
    sync_token: str | None = None


@dataclass(frozen=True)
class OAuthGrant:
    """What an OAuth provider granted for an authorization code."""

    refresh_token: str
    access_token: str
    expires_at: datetime
    email: str
