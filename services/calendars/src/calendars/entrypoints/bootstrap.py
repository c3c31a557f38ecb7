"""The one place where the calendars service is wired together."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from calendars.adapters.factory import build_providers
from calendars.adapters.secrets import SecretBox
from calendars.service_layer import handlers
from calendars.service_layer.handlers import Context
from calendars.settings import CalendarsSettings
from contracts import calendars as msg
from contracts import identity, subjects
from cortex_runtime.database import UnitOfWork
from cortex_runtime.service import ServiceRuntime


def bootstrap(settings: CalendarsSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(subjects.CALENDARS, settings)
    box = SecretBox(settings.encryption_keys.get_secret_value())
    ctx = Context(
        uow=runtime.uow,
        box=box,
        providers=build_providers(settings, box, runtime.uow),
        horizon_days=settings.sync_horizon_days,
        sync_interval=timedelta(seconds=settings.sync_interval_seconds),
        read=runtime.reader,
    )

    @runtime.rpc(msg.CONNECT_CALDAV)
    async def connect_caldav(cmd: msg.ConnectCaldav) -> msg.ConnectionReply:
        return await handlers.connect_caldav(cmd, ctx)

    @runtime.rpc(msg.LIST_CONNECTIONS)
    async def list_connections(cmd: msg.ListConnections) -> msg.ConnectionList:
        return await handlers.list_connections(cmd, ctx)

    @runtime.rpc(msg.UPDATE_CALENDAR)
    async def update_calendar(cmd: msg.UpdateCalendar) -> msg.ConnectionReply:
        return await handlers.update_calendar(cmd, ctx)

    @runtime.rpc(msg.DISCONNECT)
    async def disconnect(cmd: msg.Disconnect) -> msg.Disconnected:
        return await handlers.disconnect(cmd, ctx)

    @runtime.rpc(msg.START_OAUTH)
    async def start_oauth(cmd: msg.StartOAuth) -> msg.OAuthStarted:
        return await handlers.start_oauth(cmd, ctx)

    @runtime.rpc(msg.COMPLETE_OAUTH)
    async def complete_oauth(cmd: msg.CompleteOAuth) -> msg.ConnectionReply:
        return await handlers.complete_oauth(cmd, ctx)

    @runtime.rpc(msg.SYNC_NOW)
    async def sync_now(cmd: msg.SyncNow) -> msg.ConnectionList:
        return await handlers.sync_now(cmd, ctx)

    @runtime.rpc(msg.GET_FREE_BUSY)
    async def get_free_busy(cmd: msg.GetFreeBusy) -> msg.FreeBusy:
        return await handlers.free_busy(cmd, ctx)

    @runtime.rpc(msg.WRITE_BOOKING_EVENT)
    async def write_booking_event(cmd: msg.WriteBookingEvent) -> msg.BookingEventWritten:
        return await handlers.write_booking_event(cmd, ctx)

    @runtime.rpc(msg.APPLY_OWNER_SETTINGS)
    async def apply_owner_settings(
        cmd: identity.ApplyOwnerSettings,
    ) -> identity.OwnerSettingsApplied:
        return await handlers.apply_owner_settings(cmd, ctx)

    @runtime.rpc(msg.DELETE_BOOKING_EVENT)
    async def delete_booking_event(cmd: msg.DeleteBookingEvent) -> msg.BookingEventDeleted:
        return await handlers.delete_booking_event(cmd, ctx)

    @runtime.background
    async def scheduled_sync() -> None:
        while True:
            if await handlers.sync_due(ctx) == 0:
                await asyncio.sleep(min(5.0, settings.sync_interval_seconds))

    @runtime.background
    async def purge_tombstones() -> None:
        while True:
            await handlers.purge_tombstones(ctx)
            await asyncio.sleep(3600)

    # --- the owner: its zone (floating and all-day times), its deletion
    @runtime.consumer(identity.TENANT_CREATED)
    async def on_tenant_created(event: identity.TenantCreated, uow: UnitOfWork) -> None:
        await handlers.project_owner(uow, event, event.settings)

    @runtime.consumer(identity.SETTINGS_CHANGED)
    async def on_settings_changed(event: identity.SettingsChanged, uow: UnitOfWork) -> None:
        await handlers.project_owner(uow, event, event.settings)

    @runtime.consumer(identity.TENANT_DELETED)
    async def on_tenant_deleted(event: identity.TenantDeleted, uow: UnitOfWork) -> None:
        await handlers.forget_tenant(uow, event, event.deleted_tenant_id, event.settings_version)

    return runtime
