"""The owner: a projection of identity's settings (the zone floating and all-day times are
read in), and the tenant's deletion."""

from __future__ import annotations

import logging

from calendars.adapters import (
    booking_event_repo,
    calendar_repo,
    connection_repo,
    event_repo,
    oauth_state_repo,
    owner_repo,
)
from calendars.adapters.event_repo import PlacedTimes
from calendars.domain.ical import wall_clock_span
from calendars.domain.owner import DEFAULT_ZONE, is_newer, known_zone
from calendars.service_layer.deps import CalendarsDeps
from contracts import calendars as msg
from contracts import identity
from contracts.envelope import Message
from cortex_runtime.database import UnitOfWork

log = logging.getLogger(__name__)


def _valid_zone(name: str) -> str:
    """Identity accepts only IANA names; anything else is read as UTC rather than crash."""
    if not known_zone(name):
        log.warning("unknown owner time zone; using UTC", extra={"timezone": name[:100]})
        return DEFAULT_ZONE
    return name


async def project_owner(uow: UnitOfWork, cause: Message, settings: identity.TenantSettings) -> None:
    """Keep the owner's zone (from tenant_created / settings_changed); when it changes,
    place the stored floating and all-day events again in the new zone."""
    owner = await owner_repo.lock(uow, settings.tenant_id, share=False)
    if owner.deleted or not is_newer(
        settings.version, settings.updated_at, owner.settings_version, owner.settings_updated_at
    ):
        return
    zone = _valid_zone(settings.timezone)
    await owner_repo.set_zone(uow, settings.tenant_id, zone, settings.version, settings.updated_at)
    if zone != owner.timezone:
        await _place_local_times(uow, cause, settings.tenant_id, zone)


async def on_tenant_created(
    event: identity.TenantCreated, deps: CalendarsDeps, uow: UnitOfWork
) -> None:
    await project_owner(uow, event, event.settings)


async def on_settings_changed(
    event: identity.SettingsChanged, deps: CalendarsDeps, uow: UnitOfWork
) -> None:
    await project_owner(uow, event, event.settings)


async def apply_owner_settings(
    cmd: identity.ApplyOwnerSettings, deps: CalendarsDeps
) -> identity.OwnerSettingsApplied:
    """The gateway's hand-over of settings identity just committed (read-your-writes)."""
    async with deps.uow() as uow:
        await project_owner(uow, cmd, cmd.settings)
        held = await owner_repo.settings_version(uow, cmd.settings.tenant_id)
        await uow.commit()
    return identity.OwnerSettingsApplied(**cmd.caused(), settings_version=held)


async def _place_local_times(uow: UnitOfWork, cause: Message, tenant_id: str, zone: str) -> None:
    """Compute start/end of every event that follows the owner's zone again, calendar by
    calendar under the lock syncs take to write them; announce it (cached free/busy)."""
    changed: dict[str, str] = {}
    for cal in await calendar_repo.of_tenant_with_provider(uow, tenant_id):
        await event_repo.lock_calendar_events(uow, cal.id)
        local = await event_repo.following_zone(uow, cal.id)
        if not local:
            continue
        await event_repo.place(
            uow,
            cal.id,
            [
                PlacedTimes(
                    e.object_key,
                    e.recurrence_id,
                    *wall_clock_span(e.local_start, e.local_end, zone),
                )
                for e in local
            ],
        )
        changed[cal.connection_id] = cal.provider
    for connection_id, provider in changed.items():
        await uow.add_event(
            msg.CALENDAR_SYNCED.subject,
            msg.CalendarSynced(
                **cause.caused(tenant_id=tenant_id),
                connection_id=connection_id,
                provider=msg.Provider(provider),
            ),
        )


async def on_tenant_deleted(
    event: identity.TenantDeleted, deps: CalendarsDeps, uow: UnitOfWork
) -> None:
    await forget_tenant(uow, event, event.deleted_tenant_id, event.settings_version)


async def forget_tenant(
    uow: UnitOfWork, cause: Message, tenant_id: str, settings_version: int
) -> None:
    """The tenant was deleted: its credentials, calendars, synced events and booking-event
    records go, so nothing of it is synced again; the owner's row stays, marked deleted,
    so that no late event or connection brings anything back. Events Cortex wrote to the
    owner's calendars stay there: they are the owner's."""
    await owner_repo.lock(uow, tenant_id, share=False)
    await owner_repo.mark_deleted(uow, tenant_id, settings_version)
    # calendars and events go with the connections (ON DELETE CASCADE)
    gone = await connection_repo.delete_of_tenant(uow, tenant_id)
    await oauth_state_repo.delete_of_tenant(uow, tenant_id)
    await booking_event_repo.delete_of_tenant(uow, tenant_id)
    for row in gone:
        await uow.add_event(
            msg.CALENDAR_DISCONNECTED.subject,
            msg.CalendarDisconnected(
                **cause.caused(tenant_id=tenant_id),
                provider=msg.Provider(row.provider),
                connection_id=row.id,
            ),
        )
    if gone:
        log.info("deleted tenant's calendars removed", extra={"tenant_id": tenant_id})
