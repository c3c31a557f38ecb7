"""The activity feed's wording: how each event a tenant should see reads there. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import calendars as cal
from contracts import identity as msg


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the feed: its type, the sentence shown, the ids it is about."""

    kind: str
    summary: str
    ids: dict[str, str]


def tenant_created(event: msg.TenantCreated) -> Entry:
    return Entry(
        "tenant.created",
        f"Account created for {event.settings.email}",
        {"tenant_id": event.settings.tenant_id},
    )


def settings_changed(event: msg.SettingsChanged) -> Entry:
    return Entry(
        "settings.updated",
        f"Settings changed: {', '.join(event.changed)}",
        {"tenant_id": event.settings.tenant_id},
    )


def api_key_created(event: msg.ApiKeyCreatedEvent) -> Entry:
    return Entry(
        "api_key.created",
        f"API key '{event.name}' created ({event.prefix})",
        {"key_id": event.key_id},
    )


def api_key_revoked(event: msg.ApiKeyRevoked) -> Entry:
    return Entry("api_key.revoked", f"API key {event.prefix} revoked", {"key_id": event.key_id})


def calendar_connected(event: cal.CalendarConnected) -> Entry:
    connection = event.connection
    return Entry(
        "calendar.connected",
        f"{connection.provider.value} calendar connected ({connection.calendar_count} calendars)",
        {"connection_id": connection.id},
    )


def calendar_disconnected(event: cal.CalendarDisconnected) -> Entry:
    return Entry(
        "calendar.disconnected",
        f"{event.provider.value} calendar disconnected",
        {"connection_id": event.connection_id},
    )


def calendar_sync_failed(event: cal.CalendarSyncFailed) -> Entry:
    return Entry(
        "calendar.sync_failed",
        f"{event.provider.value} calendar sync failed: {event.reason}",
        {"connection_id": event.connection_id},
    )


def calendar_expired(event: cal.CalendarExpired) -> Entry:
    return Entry(
        "calendar.expired",
        f"{event.provider.value} calendar access expired: connect it again",
        {"connection_id": event.connection_id},
    )
