"""The one place where the booking service is wired together."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from booking.service_layer import callers_policies, handlers
from booking.settings import BookingSettings
from contracts import booking as msg
from contracts import identity as ident
from contracts import subjects
from cortex_runtime.client import RpcClient
from cortex_runtime.database import UnitOfWork
from cortex_runtime.service import ServiceRuntime


def bootstrap(settings: BookingSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(subjects.BOOKING, settings)
    ctx = handlers.Context(
        uow=runtime.uow,
        rpc=RpcClient(runtime.broker, settings.participant_timeout_seconds),
        hold=timedelta(seconds=settings.hold_seconds),
        pending_expiry=timedelta(hours=settings.pending_expiry_hours),
        participant_timeout=settings.participant_timeout_seconds,
        decide=callers_policies.decide_for_booking,
    )
    callers_policies.register(runtime, runtime.uow)

    @runtime.consumer(ident.TENANT_CREATED)
    async def on_tenant_created(event: ident.TenantCreated, uow: UnitOfWork) -> None:
        await handlers.project_settings(uow, event.settings)

    @runtime.consumer(ident.SETTINGS_CHANGED)
    async def on_settings_changed(event: ident.SettingsChanged, uow: UnitOfWork) -> None:
        await handlers.project_settings(uow, event.settings)

    @runtime.consumer(ident.TENANT_DELETED)
    async def on_tenant_deleted(event: ident.TenantDeleted, uow: UnitOfWork) -> None:
        await handlers.forget_owner(uow, event.deleted_tenant_id)

    @runtime.rpc(msg.GET_AVAILABILITY)
    async def get_availability(cmd: msg.GetAvailability) -> msg.Availability:
        return await handlers.get_availability(cmd, ctx)

    @runtime.rpc(msg.CREATE_BOOKING)
    async def create_booking(cmd: msg.CreateBooking) -> msg.BookingReply:
        return await handlers.create_booking(cmd, ctx)

    @runtime.rpc(msg.GET_PUBLIC_BOOKING)
    async def get_public_booking(cmd: msg.GetPublicBooking) -> msg.BookingReply:
        return await handlers.get_public_booking(cmd, ctx)

    @runtime.rpc(msg.GET_BOOKING)
    async def get_booking(cmd: msg.GetBooking) -> msg.BookingReply:
        return await handlers.get_booking(cmd, ctx)

    @runtime.rpc(msg.LIST_BOOKINGS)
    async def list_bookings(cmd: msg.ListBookings) -> msg.BookingList:
        return await handlers.list_bookings(cmd, ctx)

    @runtime.rpc(msg.CONFIRM_BOOKING)
    async def confirm_booking(cmd: msg.ChangeBooking) -> msg.BookingReply:
        return await handlers.confirm_booking(cmd, ctx)

    @runtime.rpc(msg.DECLINE_BOOKING)
    async def decline_booking(cmd: msg.ChangeBooking) -> msg.BookingReply:
        return await handlers.decline_booking(cmd, ctx)

    @runtime.rpc(msg.CANCEL_BOOKING)
    async def cancel_booking(cmd: msg.ChangeBooking) -> msg.BookingReply:
        return await handlers.cancel_booking(cmd, ctx)

    @runtime.background
    async def recovery() -> None:
        stale = timedelta(seconds=settings.hold_seconds)
        while True:
            if await handlers.recover(ctx, stale) == 0:
                await asyncio.sleep(settings.recovery_interval_seconds)

    return runtime
