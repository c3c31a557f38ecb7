"""Sync: bring the stored events of a connection up to date, now or on schedule, and record
how it went (the connection's status, an event)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from calendars.adapters import calendar_repo, connection_repo, event_repo, owner_repo
from calendars.adapters.calendar_repo import Calendar
from calendars.adapters.connection_repo import Connection
from calendars.adapters.providers import (
    CalendarProvider,
    CredentialsRejected,
    ProviderError,
    SyncTokenExpired,
)
from calendars.adapters.ssrf import UrlRefused
from calendars.service_layer.connections import list_connections
from calendars.service_layer.deps import CalendarsDeps
from contracts import calendars as msg
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import require_tenant

log = logging.getLogger(__name__)

_SYNCS: dict[str, asyncio.Lock] = {}


async def sync_connection(deps: CalendarsDeps, connection_id: str, live: bool = False) -> bool:
    """Bring the stored events of one connection up to date; False if the source failed.

    ``live`` uses each calendar's sync token (only what changed); otherwise the whole
    horizon is read again. Failures set the connection's status and emit an event.

    One sync of a connection at a time in this process (concurrent live checks of one owner
    queue; each still reads what changed since the one before it), and one write of a
    calendar's events at a time across replicas: two syncs replacing the same events at once
    deadlocked on their rows.
    """
    async with sync_lock(connection_id):
        return await _sync_connection(deps, connection_id, live)


def sync_lock(connection_id: str) -> asyncio.Lock:
    """The lock one sync of the connection holds in this process, from reading the provider
    to storing what it read: a change stored under it is not overwritten by a sync that
    read the provider before the change."""
    return _SYNCS.setdefault(connection_id, asyncio.Lock())


async def _sync_connection(deps: CalendarsDeps, connection_id: str, live: bool) -> bool:
    async with deps.uow() as uow:
        row = await connection_repo.get(uow, connection_id)
        if row is None:
            return False
        cals = await calendar_repo.of_connection(uow, row.id)
        zone = await owner_repo.zone(uow, row.tenant_id)
    start, end = deps.horizon()
    provider: CalendarProvider | None = None
    try:
        provider = await deps.providers.open_connection(row, zone)
        for cal in cals:
            await _sync_calendar(deps, provider, cal, start, end, incremental=live)
    except CredentialsRejected as exc:
        await mark(deps, row, msg.ConnectionStatus.EXPIRED, str(exc))
        return False
    except (ProviderError, UrlRefused) as exc:
        await mark(deps, row, msg.ConnectionStatus.ERROR, str(exc))
        return False
    finally:
        if provider is not None:
            await provider.aclose()
    await mark(deps, row, msg.ConnectionStatus.OK, None)
    return True


async def lock_calendar_for_write(uow: UnitOfWork, cal: Calendar) -> str | None:
    """Take the calendar's events lock; the owner's zone now, or None when the calendar
    is gone meanwhile (disconnected, tenant deleted): nothing is then written.

    The owner's zone is read under the lock a zone change takes too: either this write
    sees the new zone, or the change, waiting for the lock, places what it wrote."""
    await event_repo.lock_calendar_events(uow, cal.id)
    if not await calendar_repo.still_there(uow, cal.id):
        return None
    return await owner_repo.zone(uow, cal.tenant_id)


async def _sync_calendar(
    deps: CalendarsDeps,
    provider: CalendarProvider,
    cal: Calendar,
    start: datetime,
    end: datetime,
    incremental: bool,
) -> None:
    if incremental and cal.sync_token:
        try:
            changes = await provider.changes_since(cal.remote_id, cal.sync_token, start, end)
        except SyncTokenExpired:
            changes = None
        if changes is not None:
            if changes.changed_uids or changes.removed_uids or changes.sync_token != cal.sync_token:
                async with deps.uow() as uow:
                    zone = await lock_calendar_for_write(uow, cal)
                    if zone is None:
                        return
                    gone = changes.changed_uids | changes.removed_uids
                    if gone:
                        await event_repo.delete_objects(uow, cal.id, gone)
                    await event_repo.add(uow, cal, changes.changed, zone)
                    await calendar_repo.set_sync_token(uow, cal.id, changes.sync_token)
                    await uow.commit()
            return
    window = await provider.fetch_window(cal.remote_id, start, end)
    async with deps.uow() as uow:
        zone = await lock_calendar_for_write(uow, cal)
        if zone is None:
            return
        await event_repo.delete_all(uow, cal.id)
        await event_repo.add(uow, cal, window.events, zone)
        await calendar_repo.set_sync_token(uow, cal.id, window.sync_token)
        await uow.commit()


FAILED_SYNC_RETRY = timedelta(seconds=10)


async def mark(
    deps: CalendarsDeps, row: Connection, status: msg.ConnectionStatus, reason: str | None
) -> None:
    """Record a sync's outcome on the connection and announce it (an expiry once)."""
    cause = msg.SyncNow(tenant_id=row.tenant_id)
    provider = msg.Provider(row.provider)
    async with deps.uow() as uow:
        # a source that failed is tried again soon: until it answers, its time is unknown
        # and nothing there can be booked (an expired grant waits for the owner instead)
        again = deps.sync_interval
        if status is msg.ConnectionStatus.ERROR:
            again = min(again, FAILED_SYNC_RETRY)
        if not await connection_repo.set_status(
            uow,
            row.id,
            status.value,
            reason,
            datetime.now(UTC) + again,
            synced=status is msg.ConnectionStatus.OK,
        ):
            return  # disconnected meanwhile
        if status is msg.ConnectionStatus.EXPIRED:
            if row.status != status.value:  # announced once; still expired: nothing changed
                await uow.add_event(
                    msg.CALENDAR_EXPIRED.subject,
                    msg.CalendarExpired(**cause.caused(), connection_id=row.id, provider=provider),
                )
        elif status is msg.ConnectionStatus.ERROR:
            await uow.add_event(
                msg.CALENDAR_SYNC_FAILED.subject,
                msg.CalendarSyncFailed(
                    **cause.caused(), connection_id=row.id, provider=provider, reason=reason or ""
                ),
            )
        else:
            await uow.add_event(
                msg.CALENDAR_SYNCED.subject,
                msg.CalendarSynced(**cause.caused(), connection_id=row.id, provider=provider),
            )
        await uow.commit()
    if status is not msg.ConnectionStatus.OK:
        log.warning(
            "calendar sync failed",
            extra={"connection_id": row.id, "status": status.value, "reason": reason},
        )


async def sync_now(cmd: msg.SyncNow, deps: CalendarsDeps) -> msg.ConnectionList:
    tenant = require_tenant(cmd)
    async with deps.uow() as uow:
        ids = await connection_repo.ids_of_tenant(uow, tenant)
    for connection_id in ids:
        await sync_connection(deps, connection_id, live=True)
    return await list_connections(msg.ListConnections(**cmd.caused()), deps)


async def sync_due(deps: CalendarsDeps, limit: int = 10) -> int:
    """One pass of the scheduled sync: claim due connections so replicas never collide."""
    async with deps.uow() as uow:
        due = await connection_repo.claim_due(uow, limit, datetime.now(UTC) + deps.sync_interval)
        await uow.commit()
    for connection_id in due:
        await sync_connection(deps, connection_id, live=True)
    return len(due)


async def scheduled_sync(deps: CalendarsDeps) -> None:
    """The background loop of scheduled syncs (every replica runs one)."""
    while True:
        if await sync_due(deps) == 0:
            await asyncio.sleep(min(5.0, deps.sync_interval.total_seconds()))
