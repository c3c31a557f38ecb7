"""What the calendars service needs from a calendar provider (CalDAV, Google, Graph).

Every provider client implements :class:`CalendarProvider`; handlers see nothing else. What
providers answer (calendars, event occurrences, changes) is the domain's
(:mod:`calendars.domain.remote`). Times are timezone-aware; intervals are half-open
``[start, end)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from calendars.domain.remote import Changes, EventWindow, RemoteCalendar, RemoteEvent


class ProviderError(Exception):
    """The provider failed; ``str(exc)`` is a sentence safe to show to the tenant."""


class CredentialsRejected(ProviderError):
    """The provider refused the credentials (wrong password, revoked or expired grant)."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached, timed out, or did not answer like a calendar server."""


class SyncTokenExpired(ProviderError):
    """The incremental-sync token is no longer valid: a full sync is needed."""


class CalendarProvider(Protocol):
    async def list_calendars(self) -> list[RemoteCalendar]: ...

    async def fetch_window(self, calendar_id: str, start: datetime, end: datetime) -> EventWindow:
        """Every event occurrence overlapping ``[start, end)``, recurrences expanded."""
        ...

    async def changes_since(
        self, calendar_id: str, sync_token: str, start: datetime, end: datetime
    ) -> Changes:
        """The cheapest correct way to learn what changed; raises SyncTokenExpired."""
        ...

    async def create_event(
        self,
        calendar_id: str,
        uid: str,
        start: datetime,
        end: datetime,
        summary: str,
        description: str = "",
        attendee_email: str = "",
    ) -> str:
        """Create the event with this UID; creating the same UID again changes nothing.

        Returns the UID its synced copy carries (:attr:`RemoteEvent.uid` of what
        :meth:`fetch_window` lists): the UID itself, except on Graph (the event's id)."""
        ...

    async def move_event(
        self,
        calendar_id: str,
        uid: str,
        start: datetime,
        end: datetime,
        summary: str | None = None,
        description: str | None = None,
    ) -> list[RemoteEvent] | None:
        """Move the event with this UID to ``[start, end)`` in place: the same UID and
        provider event, its attendee told as on creation; a ``summary`` or
        ``description`` given replaces its own. Moving it to where it is changes nothing.

        Returns the event as it now is, as :meth:`fetch_window` would list it (what its
        synced copy becomes); None when no event has this UID."""
        ...

    async def delete_event(self, calendar_id: str, uid: str) -> None:
        """Delete the event with this UID; deleting a missing event is not an error."""
        ...

    async def aclose(self) -> None: ...
