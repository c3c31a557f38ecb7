"""The one place where the identity service is wired together."""

from __future__ import annotations

from contracts import calendars as cal
from contracts import identity as msg
from contracts import subjects
from cortex_runtime.database import UnitOfWork
from cortex_runtime.service import ServiceRuntime
from identity.service_layer import handlers
from identity.settings import IdentitySettings


def bootstrap(settings: IdentitySettings) -> ServiceRuntime:
    runtime = ServiceRuntime(subjects.IDENTITY, settings)
    uow = runtime.uow
    clerk_secret = settings.clerk_webhook_secret.get_secret_value()

    @runtime.rpc(msg.PROVISION_TENANT)
    async def provision_tenant(cmd: msg.ProvisionTenant) -> msg.TenantProvisioned:
        return await handlers.provision_tenant(cmd, uow)

    @runtime.rpc(msg.RECEIVE_CLERK_WEBHOOK)
    async def receive_clerk_webhook(cmd: msg.ReceiveClerkWebhook) -> msg.ClerkWebhookHandled:
        return await handlers.receive_clerk_webhook(cmd, uow, clerk_secret)

    @runtime.rpc(msg.VERIFY_API_KEY)
    async def verify_api_key(cmd: msg.VerifyApiKey) -> msg.ApiKeyVerified:
        return await handlers.verify_api_key(cmd, uow)

    @runtime.rpc(msg.CREATE_API_KEY)
    async def create_api_key(cmd: msg.CreateApiKey) -> msg.ApiKeyCreated:
        return await handlers.create_api_key(cmd, uow)

    @runtime.rpc(msg.LIST_API_KEYS)
    async def list_api_keys(cmd: msg.ListApiKeys) -> msg.ApiKeyList:
        return await handlers.list_api_keys(cmd, uow)

    @runtime.rpc(msg.REVOKE_API_KEY)
    async def revoke_api_key(cmd: msg.RevokeApiKey) -> msg.ApiKeyRevokedReply:
        return await handlers.revoke_api_key(cmd, uow)

    @runtime.rpc(msg.RECORD_KEY_USAGE)
    async def record_key_usage(cmd: msg.RecordKeyUsage) -> msg.UsageRecorded:
        return await handlers.record_key_usage(cmd, uow)

    @runtime.rpc(msg.GET_SETTINGS)
    async def get_settings(cmd: msg.GetSettings) -> msg.SettingsReply:
        # one SELECT: autocommit, no BEGIN/ROLLBACK round trips
        return await handlers.get_settings(cmd, runtime.reader)

    @runtime.rpc(msg.UPDATE_SETTINGS)
    async def update_settings(cmd: msg.UpdateSettings) -> msg.SettingsReply:
        return await handlers.update_settings(cmd, uow)

    @runtime.rpc(msg.RESOLVE_IDENTITY)
    async def resolve_identity(cmd: msg.ResolveIdentity) -> msg.IdentityResolved:
        return await handlers.resolve_identity(cmd, uow)

    @runtime.rpc(msg.LIST_ACTIVITY)
    async def list_activity(cmd: msg.ListActivity) -> msg.ActivityPage:
        return await handlers.list_activity(cmd, uow)

    # the activity feed: a projection of events (other services' join as they are built)
    @runtime.consumer(msg.TENANT_CREATED)
    async def on_tenant_created(event: msg.TenantCreated, uow: UnitOfWork) -> None:
        await handlers.record_activity(
            uow, event, "tenant.created", f"Account created for {event.settings.email}",
            {"tenant_id": event.settings.tenant_id},
        )  # fmt: skip

    @runtime.consumer(msg.SETTINGS_CHANGED)
    async def on_settings_changed(event: msg.SettingsChanged, uow: UnitOfWork) -> None:
        await handlers.record_activity(
            uow, event, "settings.updated", f"Settings changed: {', '.join(event.changed)}",
            {"tenant_id": event.settings.tenant_id},
        )  # fmt: skip

    @runtime.consumer(msg.API_KEY_CREATED)
    async def on_key_created(event: msg.ApiKeyCreatedEvent, uow: UnitOfWork) -> None:
        await handlers.record_activity(
            uow, event, "api_key.created", f"API key '{event.name}' created ({event.prefix})",
            {"key_id": event.key_id},
        )  # fmt: skip

    @runtime.consumer(msg.API_KEY_REVOKED)
    async def on_key_revoked(event: msg.ApiKeyRevoked, uow: UnitOfWork) -> None:
        await handlers.record_activity(
            uow,
            event,
            "api_key.revoked",
            f"API key {event.prefix} revoked",
            {"key_id": event.key_id},
        )

    @runtime.consumer(cal.CALENDAR_CONNECTED)
    async def on_calendar_connected(event: cal.CalendarConnected, uow: UnitOfWork) -> None:
        connection = event.connection
        summary = f"{connection.provider.value} calendar connected"
        await handlers.record_activity(
            uow, event, "calendar.connected", f"{summary} ({connection.calendar_count} calendars)",
            {"connection_id": connection.id},
        )  # fmt: skip

    @runtime.consumer(cal.CALENDAR_DISCONNECTED)
    async def on_calendar_disconnected(event: cal.CalendarDisconnected, uow: UnitOfWork) -> None:
        await handlers.record_activity(
            uow, event, "calendar.disconnected", f"{event.provider.value} calendar disconnected",
            {"connection_id": event.connection_id},
        )  # fmt: skip

    @runtime.consumer(cal.CALENDAR_SYNC_FAILED)
    async def on_calendar_sync_failed(event: cal.CalendarSyncFailed, uow: UnitOfWork) -> None:
        await handlers.record_activity(
            uow, event, "calendar.sync_failed",
            f"{event.provider.value} calendar sync failed: {event.reason}",
            {"connection_id": event.connection_id},
        )  # fmt: skip

    @runtime.consumer(cal.CALENDAR_EXPIRED)
    async def on_calendar_expired(event: cal.CalendarExpired, uow: UnitOfWork) -> None:
        await handlers.record_activity(
            uow, event, "calendar.expired",
            f"{event.provider.value} calendar access expired: connect it again",
            {"connection_id": event.connection_id},
        )  # fmt: skip

    return runtime
