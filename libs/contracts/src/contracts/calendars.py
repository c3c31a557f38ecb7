"""Messages of the calendars service: connections, sync, free/busy, event writes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from contracts import subjects
from contracts.envelope import Message
from contracts.identity import ApplyOwnerSettings, OwnerSettingsApplied
from contracts.rpc import EventSpec, Rpc

CALENDARS = subjects.CALENDARS


class Provider(StrEnum):
    GOOGLE = "google"
    OUTLOOK = "outlook"
    CALDAV = "caldav"


class ConnectionStatus(StrEnum):
    OK = "ok"
    SYNCING = "syncing"
    ERROR = "error"
    EXPIRED = "expired"


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarInfo(Value):
    id: str
    name: str
    contributes_to_availability: bool
    receives_bookings: bool


class ConnectionInfo(Value):
    id: str
    provider: Provider
    email: str
    status: ConnectionStatus
    status_reason: str | None = None
    last_synced_at: datetime | None = None
    calendar_count: int
    calendars: list[CalendarInfo]


class BusyInterval(Value):
    start: datetime
    end: datetime


class SourceStatus(Value):
    connection_id: str
    provider: Provider
    calendar_id: str
    status: ConnectionStatus
    known: bool = Field(description="False when the source could not be read: treat as busy")
    reason: str | None = None


# --- requests and replies ---------------------------------------------------------------


class ConnectCaldav(Message):
    server_url: str = Field(max_length=2048)
    username: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class ConnectionReply(Message):
    connection: ConnectionInfo


class ListConnections(Message):
    pass


class ConnectionList(Message):
    connections: list[ConnectionInfo]


class UpdateCalendar(Message):
    calendar_id: str = Field(max_length=100)
    contributes_to_availability: bool | None = None
    receives_bookings: bool | None = None


class Disconnect(Message):
    provider: str = Field(max_length=40)


class Disconnected(Message):
    provider: Provider


class StartOAuth(Message):
    provider: str = Field(max_length=40)
    redirect_uri: str = Field(max_length=2048)


class OAuthStarted(Message):
    authorization_url: str
    state: str


class CompleteOAuth(Message):
    provider: str = Field(max_length=40)
    code: str = Field(max_length=4096)
    state: str = Field(max_length=200)


class SyncNow(Message):
    pass


DEADLINE_DESCRIPTION = (
    "When the saga stops waiting for this answer (it then undoes the step): a command "
    "arriving later is refused with deadline_passed and does nothing"
)


class GetFreeBusy(Message):
    start: datetime
    end: datetime
    live: bool = Field(
        default=False, description="Ask the providers what changed first (the saga's prepare)"
    )
    deadline: datetime | None = Field(default=None, description=DEADLINE_DESCRIPTION)
    explain: bool = Field(
        default=False,
        description=(
            "List every event behind the busy time (not only the first 50), to explain it: "
            "ask a day or a few"
        ),
    )


class BusyEvent(Value):
    start: datetime
    end: datetime
    summary: str
    calendar_id: str = Field(default="", description="The calendar it is on (CalendarInfo.id)")
    calendar_name: str = ""
    booking_id: str | None = Field(
        default=None, description="The booking this event was written for, when Cortex wrote it"
    )


class FreeBusy(Message):
    busy: list[BusyInterval]
    events: list[BusyEvent] = Field(
        default_factory=list,
        description=(
            "The events behind the busy time, by start (the first 50; all of them with "
            "explain), to name a clash"
        ),
    )
    sources: list[SourceStatus]
    unknown: list[BusyInterval] = Field(
        description="Time no source could vouch for (a source in error): not free"
    )


class WriteBookingEvent(Message):
    booking_id: str = Field(max_length=100)
    start: datetime
    end: datetime
    summary: str = Field(max_length=300)
    description: str = Field(default="", max_length=5000)
    attendee_email: str = Field(default="", max_length=320)
    deadline: datetime | None = Field(default=None, description=DEADLINE_DESCRIPTION)


class BookingEventWritten(Message):
    booking_id: str
    provider: Provider | None = Field(description="None when no calendar receives bookings")
    calendar_id: str | None
    uid: str | None


class MoveBookingEvent(Message):
    """Move the booking's event to new times in place (same UID, same provider event)."""

    booking_id: str = Field(max_length=100)
    start: datetime
    end: datetime
    summary: str | None = Field(
        default=None, max_length=300, description="A new summary; None keeps the event's"
    )
    description: str | None = Field(
        default=None, max_length=5000, description="A new description; None keeps the event's"
    )
    deadline: datetime | None = Field(default=None, description=DEADLINE_DESCRIPTION)


class DeleteBookingEvent(Message):
    booking_id: str = Field(max_length=100)


class BookingEventDeleted(Message):
    booking_id: str
    deleted: bool


# --- events ----------------------------------------------------------------------------


class CalendarConnected(Message):
    connection: ConnectionInfo


class CalendarDisconnected(Message):
    provider: Provider
    connection_id: str


class CalendarSyncFailed(Message):
    connection_id: str
    provider: Provider
    reason: str


class CalendarExpired(Message):
    connection_id: str
    provider: Provider


class CalendarSynced(Message):
    """The synced events of a tenant changed: cached availability is stale."""

    connection_id: str
    provider: Provider


CONNECT_CALDAV: Final[Rpc[ConnectCaldav, ConnectionReply]] = Rpc(
    subjects.command(CALENDARS, "connect_caldav"), ConnectCaldav, ConnectionReply,
    "Discover a CalDAV account's calendars and store the connection",
)  # fmt: skip
LIST_CONNECTIONS: Final[Rpc[ListConnections, ConnectionList]] = Rpc(
    subjects.command(CALENDARS, "list_connections"), ListConnections, ConnectionList,
    "The tenant's calendar connections",
)  # fmt: skip
UPDATE_CALENDAR: Final[Rpc[UpdateCalendar, ConnectionReply]] = Rpc(
    subjects.command(CALENDARS, "update_calendar"), UpdateCalendar, ConnectionReply,
    "Choose whether a calendar counts for availability and which receives bookings",
)  # fmt: skip
DISCONNECT: Final[Rpc[Disconnect, Disconnected]] = Rpc(
    subjects.command(CALENDARS, "disconnect"), Disconnect, Disconnected,
    "Remove a provider connection, its secrets and its synced events",
)  # fmt: skip
START_OAUTH: Final[Rpc[StartOAuth, OAuthStarted]] = Rpc(
    subjects.command(CALENDARS, "start_oauth"), StartOAuth, OAuthStarted,
    "The OAuth 2.0 authorization URL (state and PKCE) for Google or Outlook",
)  # fmt: skip
COMPLETE_OAUTH: Final[Rpc[CompleteOAuth, ConnectionReply]] = Rpc(
    subjects.command(CALENDARS, "complete_oauth"), CompleteOAuth, ConnectionReply,
    "Exchange the authorization code, store the encrypted refresh token, sync",
)  # fmt: skip
SYNC_NOW: Final[Rpc[SyncNow, ConnectionList]] = Rpc(
    subjects.command(CALENDARS, "sync_now"), SyncNow, ConnectionList,
    "Sync every connection of the tenant now",
)  # fmt: skip
GET_FREE_BUSY: Final[Rpc[GetFreeBusy, FreeBusy]] = Rpc(
    subjects.command(CALENDARS, "get_free_busy"), GetFreeBusy, FreeBusy,
    "Merged busy time over a range from every contributing calendar, with per-source status",
)  # fmt: skip
WRITE_BOOKING_EVENT: Final[Rpc[WriteBookingEvent, BookingEventWritten]] = Rpc(
    subjects.command(CALENDARS, "write_booking_event"), WriteBookingEvent, BookingEventWritten,
    "Create the booking's event on the receiving calendar (the booking id is its UID)",
)  # fmt: skip
MOVE_BOOKING_EVENT: Final[Rpc[MoveBookingEvent, BookingEventWritten]] = Rpc(
    subjects.command(CALENDARS, "move_booking_event"), MoveBookingEvent, BookingEventWritten,
    "Move the booking's event to new times in place: same UID and provider event, no second one",
)  # fmt: skip
DELETE_BOOKING_EVENT: Final[Rpc[DeleteBookingEvent, BookingEventDeleted]] = Rpc(
    subjects.command(CALENDARS, "delete_booking_event"), DeleteBookingEvent, BookingEventDeleted,
    "Delete the booking's event (compensation or cancellation)",
)  # fmt: skip
APPLY_OWNER_SETTINGS: Final[Rpc[ApplyOwnerSettings, OwnerSettingsApplied]] = Rpc(
    subjects.command(CALENDARS, "apply_owner_settings"), ApplyOwnerSettings, OwnerSettingsApplied,
    "Apply an owner's zone from settings identity just committed, before the change is answered",
)  # fmt: skip

CALENDAR_CONNECTED: Final = EventSpec(
    subjects.event(CALENDARS, "calendar_connected"), CalendarConnected, "a calendar was connected"
)
CALENDAR_DISCONNECTED: Final = EventSpec(
    subjects.event(CALENDARS, "calendar_disconnected"), CalendarDisconnected,
    "a calendar was disconnected",
)  # fmt: skip
CALENDAR_SYNC_FAILED: Final = EventSpec(
    subjects.event(CALENDARS, "calendar_sync_failed"), CalendarSyncFailed, "a calendar sync failed"
)
CALENDAR_EXPIRED: Final = EventSpec(
    subjects.event(CALENDARS, "calendar_expired"), CalendarExpired,
    "a calendar's credentials stopped working",
)  # fmt: skip
CALENDAR_SYNCED: Final = EventSpec(
    subjects.event(CALENDARS, "calendar_synced"), CalendarSynced, "a calendar's events changed"
)

RPCS: Final = (
    CONNECT_CALDAV, LIST_CONNECTIONS, UPDATE_CALENDAR, DISCONNECT, START_OAUTH, COMPLETE_OAUTH,
    SYNC_NOW, GET_FREE_BUSY, WRITE_BOOKING_EVENT, DELETE_BOOKING_EVENT, APPLY_OWNER_SETTINGS,
    MOVE_BOOKING_EVENT,
)  # fmt: skip
EVENTS: Final = (
    CALENDAR_CONNECTED, CALENDAR_DISCONNECTED, CALENDAR_SYNC_FAILED, CALENDAR_EXPIRED,
    CALENDAR_SYNCED,
)  # fmt: skip
