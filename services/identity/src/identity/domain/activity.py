"""The activity feed's wording: how each event a tenant should see reads there. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from contracts import booking_changes as booking
from contracts import calendars as cal
from contracts import identity as msg
from contracts.text import clean_text

SUMMARY_MAX = 300


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the feed: its type, the sentence shown (cleaned, at most 300
    characters), the ids it is about."""

    kind: str
    summary: str
    ids: dict[str, str]


def _entry(kind: str, summary: str, ids: dict[str, str]) -> Entry:
    return Entry(kind, clean_text(summary, SUMMARY_MAX), ids)


def tenant_created(event: msg.TenantCreated) -> Entry:
    return _entry(
        "tenant.created",
        f"Account created for {event.settings.email}",
        {"tenant_id": event.settings.tenant_id},
    )


def settings_changed(event: msg.SettingsChanged) -> Entry:
    return _entry(
        "settings.updated",
        f"Settings changed: {', '.join(event.changed)}",
        {"tenant_id": event.settings.tenant_id},
    )


def api_key_created(event: msg.ApiKeyCreatedEvent) -> Entry:
    return _entry(
        "api_key.created",
        f"API key '{event.name}' created ({event.prefix})",
        {"key_id": event.key_id},
    )


def api_key_revoked(event: msg.ApiKeyRevoked) -> Entry:
    return _entry("api_key.revoked", f"API key {event.prefix} revoked", {"key_id": event.key_id})


def calendar_connected(event: cal.CalendarConnected) -> Entry:
    connection = event.connection
    return _entry(
        "calendar.connected",
        f"{connection.provider.value} calendar connected ({connection.calendar_count} calendars)",
        {"connection_id": connection.id},
    )


def calendar_disconnected(event: cal.CalendarDisconnected) -> Entry:
    return _entry(
        "calendar.disconnected",
        f"{event.provider.value} calendar disconnected",
        {"connection_id": event.connection_id},
    )


def calendar_sync_failed(event: cal.CalendarSyncFailed) -> Entry:
    return _entry(
        "calendar.sync_failed",
        f"{event.provider.value} calendar sync failed: {event.reason}",
        {"connection_id": event.connection_id},
    )


def calendar_expired(event: cal.CalendarExpired) -> Entry:
    return _entry(
        "calendar.expired",
        f"{event.provider.value} calendar access expired: connect it again",
        {"connection_id": event.connection_id},
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def booking_rescheduled(event: booking.BookingRescheduled) -> Entry:
    moved = event.booking
    who = "the attendee" if event.by is booking.ChangedBy.ATTENDEE else "the owner"
    return _entry(
        "booking.rescheduled",
        f"Booking '{moved.title}' with {moved.attendee_email} moved by {who} from "
        f"{_utc(event.old.start)} to {_utc(event.new.start)}",
        {"booking_id": moved.booking_id},
    )
