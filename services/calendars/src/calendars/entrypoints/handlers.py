"""Every command and event the calendars service handles, and the handler of each."""

from __future__ import annotations

from typing import Final

from calendars.service_layer import (
    booking_events,
    connecting,
    connections,
    free_busy,
    oauth,
    owner,
    sync,
)
from contracts import calendars as msg
from contracts import identity
from cortex_runtime.handlers import event, rpc

HANDLERS: Final = (
    # --- connections
    rpc(msg.CONNECT_CALDAV, connecting.connect_caldav),
    rpc(msg.START_OAUTH, oauth.start_oauth),
    rpc(msg.COMPLETE_OAUTH, oauth.complete_oauth),
    rpc(msg.LIST_CONNECTIONS, connections.list_connections),
    rpc(msg.UPDATE_CALENDAR, connections.update_calendar),
    rpc(msg.DISCONNECT, connections.disconnect),
    # --- sync and free/busy
    rpc(msg.SYNC_NOW, sync.sync_now),
    rpc(msg.GET_FREE_BUSY, free_busy.free_busy),
    # --- the saga's event writes
    rpc(msg.WRITE_BOOKING_EVENT, booking_events.write_booking_event),
    rpc(msg.MOVE_BOOKING_EVENT, booking_events.move_booking_event),
    rpc(msg.DELETE_BOOKING_EVENT, booking_events.delete_booking_event),
    # --- the owner: its zone (floating and all-day times), its deletion
    rpc(msg.APPLY_OWNER_SETTINGS, owner.apply_owner_settings),
    event(identity.TENANT_CREATED, owner.on_tenant_created),
    event(identity.SETTINGS_CHANGED, owner.on_settings_changed),
    event(identity.TENANT_DELETED, owner.on_tenant_deleted),
)
