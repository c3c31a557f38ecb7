"""How each event reads in the tenant's activity feed."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import booking as bk
from contracts import booking_changes as changes
from contracts import calendars as cal
from contracts import identity as msg
from identity.domain import activity
from identity.domain.activity import Entry
from identity.domain.rules import DEFAULT_WORKING_HOURS

SETTINGS = msg.TenantSettings(
    tenant_id="tn_0123456789abcdef0123",
    email="alice@example.com",
    display_name="Alice",
    slug=None,
    open_scheduling=False,
    user_type=msg.UserType.INDIVIDUAL,
    timezone="UTC",
    working_hours=DEFAULT_WORKING_HOURS,
    booking_rules=msg.BookingRules(),
    updated_at=datetime(2030, 1, 1, tzinfo=UTC),
)
CONNECTION = cal.ConnectionInfo(
    id="conn_0123456789abcdef0123",
    provider=cal.Provider.GOOGLE,
    email="alice@example.com",
    status=cal.ConnectionStatus.OK,
    calendar_count=2,
    calendars=[],
)


def test_identity_events() -> None:
    tenant = {"tenant_id": SETTINGS.tenant_id}
    assert activity.tenant_created(msg.TenantCreated(settings=SETTINGS)) == Entry(
        "tenant.created", "Account created for alice@example.com", tenant
    )
    changed = msg.SettingsChanged(settings=SETTINGS, changed=["slug", "timezone"])
    assert activity.settings_changed(changed) == Entry(
        "settings.updated", "Settings changed: slug, timezone", tenant
    )
    created = msg.ApiKeyCreatedEvent(key_id="key_1", name="ci", prefix="abc123")
    assert activity.api_key_created(created) == Entry(
        "api_key.created", "API key 'ci' created (abc123)", {"key_id": "key_1"}
    )
    revoked = msg.ApiKeyRevoked(key_id="key_1", prefix="abc123")
    assert activity.api_key_revoked(revoked) == Entry(
        "api_key.revoked", "API key abc123 revoked", {"key_id": "key_1"}
    )


def test_calendar_events() -> None:
    ids = {"connection_id": CONNECTION.id}
    assert activity.calendar_connected(cal.CalendarConnected(connection=CONNECTION)) == Entry(
        "calendar.connected", "google calendar connected (2 calendars)", ids
    )
    google = cal.Provider.GOOGLE
    disconnected = cal.CalendarDisconnected(provider=google, connection_id=CONNECTION.id)
    assert activity.calendar_disconnected(disconnected) == Entry(
        "calendar.disconnected", "google calendar disconnected", ids
    )
    failed = cal.CalendarSyncFailed(connection_id=CONNECTION.id, provider=google, reason="boom")
    assert activity.calendar_sync_failed(failed) == Entry(
        "calendar.sync_failed", "google calendar sync failed: boom", ids
    )
    expired = cal.CalendarExpired(connection_id=CONNECTION.id, provider=google)
    assert activity.calendar_expired(expired) == Entry(
        "calendar.expired", "google calendar access expired: connect it again", ids
    )


def test_a_summary_is_cleaned_and_capped() -> None:
    failed = cal.CalendarSyncFailed(
        connection_id=CONNECTION.id, provider=cal.Provider.GOOGLE, reason="bad\x1b[31m\n" * 100
    )
    summary = activity.calendar_sync_failed(failed).summary
    assert summary.startswith("google calendar sync failed: bad[31m bad[31m")
    assert len(summary) == activity.SUMMARY_MAX


def test_a_rescheduled_booking() -> None:
    old = bk.Slot(
        start=datetime(2030, 1, 2, 9, tzinfo=UTC), end=datetime(2030, 1, 2, 10, tzinfo=UTC)
    )
    new = bk.Slot(
        start=datetime(2030, 1, 3, 14, tzinfo=UTC), end=datetime(2030, 1, 3, 15, tzinfo=UTC)
    )
    info = bk.BookingInfo(
        booking_id="bk_0123456789abcdef0123",
        slug="alice",
        status=bk.BookingStatus.CONFIRMED,
        start=new.start,
        end=new.end,
        title="Intro",
        description="",
        attendee_email="bob@example.com",
        attendee_name="",
        calendar_event=None,
        created_at=old.start,
    )
    moved = changes.BookingRescheduled(booking=info, old=old, new=new, by=bk.ChangedBy.ATTENDEE)
    assert activity.booking_rescheduled(moved) == Entry(
        "booking.rescheduled",
        "Booking 'Intro' with bob@example.com moved by the attendee from 2030-01-02 09:00 UTC "
        "to 2030-01-03 14:00 UTC",
        {"booking_id": info.booking_id},
    )
