"""What the calendars service needs from a calendar provider (CalDAV, Google, Graph).

Every provider client implements :class:`CalendarProvider`; handlers see nothing else. What
providers answer (calendars, event occurrences, changes) is the domain's
(:mod:`calendars.domain.remote`). Times are timezone-aware; intervals are half-open
``[start, end)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from calendars.domain.remote import Changes, EventWindow, RemoteCalendar


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
    ) -> None:
        """Create the event with this UID; creating the same UID again changes nothing."""
        ...

    async def delete_event(self, calendar_id: str, uid: str) -> None:
        """Delete the event with this UID; deleting a missing event is not an error."""
        ...

    async def aclose(self) -> None: ...
