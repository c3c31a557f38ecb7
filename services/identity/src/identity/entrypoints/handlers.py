"""Every message the identity service answers or consumes, and the handler that does."""

from __future__ import annotations

from typing import Final

from contracts import booking_changes as booking
from contracts import calendars as cal
from contracts import identity as msg
from cortex_runtime.handlers import event, rpc
from identity.service_layer import (
    activity,
    api_keys,
    clerk_webhook,
    resolution,
    signup,
    tenant_settings,
)

HANDLERS: Final = (
    # tenants
    rpc(msg.PROVISION_TENANT, signup.provision_tenant),
    rpc(msg.RECEIVE_CLERK_WEBHOOK, clerk_webhook.receive_clerk_webhook),
    # API keys
    rpc(msg.VERIFY_API_KEY, api_keys.verify_api_key),
    rpc(msg.CREATE_API_KEY, api_keys.create_api_key),
    rpc(msg.LIST_API_KEYS, api_keys.list_api_keys),
    rpc(msg.REVOKE_API_KEY, api_keys.revoke_api_key),
    rpc(msg.RECORD_KEY_USAGE, api_keys.record_key_usage),
    # settings and resolution
    rpc(msg.GET_SETTINGS, tenant_settings.get_settings),
    rpc(msg.UPDATE_SETTINGS, tenant_settings.update_settings),
    rpc(msg.RESOLVE_IDENTITY, resolution.resolve_identity),
    # the activity feed, and the events it projects
    rpc(msg.LIST_ACTIVITY, activity.list_activity),
    event(msg.TENANT_CREATED, activity.on_tenant_created),
    event(msg.SETTINGS_CHANGED, activity.on_settings_changed),
    event(msg.API_KEY_CREATED, activity.on_api_key_created),
    event(msg.API_KEY_REVOKED, activity.on_api_key_revoked),
    event(cal.CALENDAR_CONNECTED, activity.on_calendar_connected),
    event(cal.CALENDAR_DISCONNECTED, activity.on_calendar_disconnected),
    event(cal.CALENDAR_SYNC_FAILED, activity.on_calendar_sync_failed),
    event(cal.CALENDAR_EXPIRED, activity.on_calendar_expired),
    event(booking.BOOKING_RESCHEDULED, activity.on_booking_rescheduled),
)
