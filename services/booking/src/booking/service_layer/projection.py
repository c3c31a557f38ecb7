"""The owners projection: identity's settings as booking needs them, kept newest first."""

from __future__ import annotations

from booking.adapters import owners
from booking.service_layer.deps import BookingDeps
from contracts import identity as ident
from contracts import owners as owner_msg
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError, require_tenant


async def project_settings(uow: UnitOfWork, settings: ident.TenantSettings) -> bool:
    """Keep the newest settings; say whether these were newer than what the projection held.

    Events arrive out of order and may be redelivered, and the gateway hands over the result
    of a change before its event arrives: identity's ``version`` decides (settings from
    before versions existed, version 0, fall back to ``updated_at``). A forgotten owner is
    never brought back, whatever arrives after its deletion."""
    return await owners.project(uow, settings)


async def forget_owner(uow: UnitOfWork, event: ident.TenantDeleted) -> None:
    """Mark the owner deleted, at the deletion's version: a settings event of the tenant
    arriving later (redelivered, or late) finds it and changes nothing. An owner this
    projection never saw gets a tombstone for the same reason."""
    await owners.forget(uow, event.deleted_tenant_id, event.settings_version, event.occurred_at)


async def on_tenant_created(event: ident.TenantCreated, deps: BookingDeps, uow: UnitOfWork) -> None:
    await project_settings(uow, event.settings)


async def on_settings_changed(
    event: ident.SettingsChanged, deps: BookingDeps, uow: UnitOfWork
) -> None:
    await project_settings(uow, event.settings)


async def on_tenant_deleted(event: ident.TenantDeleted, deps: BookingDeps, uow: UnitOfWork) -> None:
    await forget_owner(uow, event)


async def apply_owner_settings(
    cmd: ident.ApplyOwnerSettings, deps: BookingDeps
) -> ident.OwnerSettingsApplied:
    """Read-your-writes: the settings identity just committed, applied before the gateway
    answers the change (the event that follows finds nothing newer)."""
    tenant_id = require_tenant(cmd)
    if cmd.settings.tenant_id != tenant_id:
        raise ServiceError(
            ErrorKind.INVALID, "tenant_mismatch", "The settings are not the caller's tenant's."
        )
    async with deps.uow() as uow:
        await project_settings(uow, cmd.settings)
        version = await owners.settings_version(uow, tenant_id)
        await uow.commit()
    return ident.OwnerSettingsApplied(**cmd.caused(), settings_version=version)


async def owner_calendars_changed(
    cmd: owner_msg.OwnerCalendarsChanged, deps: BookingDeps
) -> owner_msg.OwnerCalendarsVersion:
    """Every replica's cached free/busy answers for the owner become stale at once: an
    answer is served only under the ``calendars_version`` it was filled under, and
    availability reads the owner's row (with that version) on every request anyway."""
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        version = await owners.bump_calendars_version(uow, tenant_id)
        await uow.commit()
    if deps.free_busy_cache is not None:
        deps.free_busy_cache.forget(tenant_id)
    return owner_msg.OwnerCalendarsVersion(**cmd.caused(), calendars_version=version or 0)
