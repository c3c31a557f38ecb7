"""The one place where the booking service is wired together."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

from nats.aio.msg import Msg

from booking.adapters.free_busy_cache import FreeBusyCache
from booking.service_layer import callers_policies, handlers
from booking.settings import BookingSettings
from contracts import booking as msg
from contracts import gateway as gw
from contracts import identity as ident
from contracts import owners as owner_msg
from contracts import subjects
from cortex_runtime import broker as messaging
from cortex_runtime.client import RpcClient
from cortex_runtime.database import UnitOfWork
from cortex_runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


def bootstrap(settings: BookingSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(subjects.BOOKING, settings)
    caching = settings.free_busy_cache_seconds > 0
    free_busy_cache = FreeBusyCache(settings.free_busy_cache_seconds)
    ctx = handlers.Context(
        uow=runtime.uow,
        rpc=RpcClient(runtime.broker, settings.participant_timeout_seconds),
        hold=timedelta(seconds=settings.hold_seconds),
        pending_expiry=timedelta(hours=settings.pending_expiry_hours),
        participant_timeout=settings.participant_timeout_seconds,
        decide=callers_policies.decide_for_booking,
        read=runtime.reader,
        free_busy_cache=free_busy_cache if caching else None,
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
        await handlers.forget_owner(uow, event)

    async def on_booking_unanswered(cmd: msg.CreateBooking) -> None:
        await handlers.settle_unanswered(cmd, ctx)

    # idempotent by booking id: no inbox needed. A hand-over is the only trace of a request
    # answered 202: it is retried through any database outage (never dead-lettered for
    # one), every 5 s at most, so its status URL answers soon after the database is back
    messaging.consume_event(
        runtime.broker,
        gw.BOOKING_UNANSWERED,
        subjects.BOOKING,
        on_booking_unanswered,
        ack_wait=max(60.0, 4 * settings.participant_timeout_seconds),
        delivery=runtime.delivery(outlast_outages=True, max_backoff_seconds=5.0),
    )

    @runtime.rpc(owner_msg.APPLY_OWNER_SETTINGS)
    async def apply_owner_settings(
        cmd: ident.ApplyOwnerSettings,
    ) -> ident.OwnerSettingsApplied:
        return await handlers.apply_owner_settings(cmd, ctx)

    @runtime.rpc(owner_msg.OWNER_CALENDARS_CHANGED)
    async def owner_calendars_changed(
        cmd: owner_msg.OwnerCalendarsChanged,
    ) -> owner_msg.OwnerCalendarsVersion:
        return await handlers.owner_calendars_changed(cmd, ctx)

    @runtime.rpc(msg.GET_AVAILABILITY)
    async def get_availability(cmd: msg.GetAvailability) -> msg.Availability:
        return await handlers.get_availability(cmd, ctx)

    @runtime.rpc(msg.GET_OWNER_AVAILABILITY)
    async def get_owner_availability(cmd: msg.GetOwnerAvailability) -> msg.OwnerAvailability:
        return await handlers.get_owner_availability(cmd, ctx)

    @runtime.rpc(msg.GET_PAGE)
    async def get_page(cmd: msg.GetPage) -> msg.Page:
        return await handlers.get_page(cmd, ctx)

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

    async def forget_changed_calendars() -> None:
        """Every replica hears every calendars event (core NATS, no queue group) and drops
        the cached free/busy answers of the tenant it is about."""

        async def on_event(message: Msg) -> None:
            try:
                tenant_id = json.loads(message.data).get("tenant_id")
            except (ValueError, AttributeError):
                tenant_id = None
            free_busy_cache.forget(tenant_id if isinstance(tenant_id, str) else None)

        subscription = await runtime.broker.connection.subscribe(
            subjects.events_wildcard(subjects.CALENDARS), cb=on_event
        )
        free_busy_cache.forget()  # whatever was cached before listening
        try:
            await asyncio.Event().wait()
        finally:
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # closing: nothing left to clean up
                log.debug("free/busy listener: %r", exc)

    if caching:
        runtime.background(forget_changed_calendars)
    return runtime
