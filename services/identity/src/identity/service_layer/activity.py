"""The tenant's activity feed: a projection of events (identity's own and other services'),
read newest first a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import booking_changes as booking
from contracts import calendars as cal
from contracts import identity as msg
from contracts.envelope import Message
from cortex_runtime.cursors import decode_cursor, encode_cursor
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import require_tenant
from identity.adapters import activity
from identity.adapters.activity import Position
from identity.domain import activity as wording
from identity.domain.activity import Entry
from identity.service_layer.deps import IdentityDeps

CURSOR_KIND = "a"
"""The feed's cursors: the last item's time and sequence number (the form since the start)."""


async def list_activity(cmd: msg.ListActivity, deps: IdentityDeps) -> msg.ActivityPage:
    tenant_id = require_tenant(cmd)
    before = None
    if cmd.cursor:
        before = Position(*decode_cursor(cmd.cursor, kind=CURSOR_KIND, key=int))
    async with deps.uow() as uow:
        rows = await activity.newest_first(uow, tenant_id, cmd.limit + 1, before)
    page = rows[: cmd.limit]
    items = [
        msg.ActivityItem(
            id=str(row.seq),
            type=row.type,
            summary=row.summary,
            occurred_at=row.occurred_at,
            ids=row.ids,
        )
        for row in page
    ]
    more = len(rows) > cmd.limit  # then the page is full (limit >= 1): its last item is next
    cursor = encode_cursor(CURSOR_KIND, page[-1].occurred_at, page[-1].seq) if more else None
    return msg.ActivityPage(items=items, next_cursor=cursor)


async def record(uow: UnitOfWork, event: Message, entry: Entry) -> None:
    """Project one event into its tenant's feed; its id makes a re-sent event a no-op."""
    if not event.tenant_id:
        return
    await activity.add_once(
        uow,
        event_id=event.message_id,
        tenant_id=event.tenant_id,
        kind=entry.kind,
        summary=entry.summary,
        occurred_at=event.occurred_at or datetime.now(UTC),
        ids=entry.ids,
    )


# --- the events the feed shows ---------------------------------------------------------------


async def on_tenant_created(event: msg.TenantCreated, deps: IdentityDeps, uow: UnitOfWork) -> None:
    await record(uow, event, wording.tenant_created(event))


async def on_settings_changed(
    event: msg.SettingsChanged, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.settings_changed(event))


async def on_api_key_created(
    event: msg.ApiKeyCreatedEvent, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.api_key_created(event))


async def on_api_key_revoked(event: msg.ApiKeyRevoked, deps: IdentityDeps, uow: UnitOfWork) -> None:
    await record(uow, event, wording.api_key_revoked(event))


async def on_calendar_connected(
    event: cal.CalendarConnected, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.calendar_connected(event))


async def on_calendar_disconnected(
    event: cal.CalendarDisconnected, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.calendar_disconnected(event))


async def on_calendar_sync_failed(
    event: cal.CalendarSyncFailed, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.calendar_sync_failed(event))


async def on_calendar_expired(
    event: cal.CalendarExpired, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.calendar_expired(event))


async def on_booking_rescheduled(
    event: booking.BookingRescheduled, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.booking_rescheduled(event))
