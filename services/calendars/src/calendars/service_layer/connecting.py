"""Connecting a calendar account: CalDAV with a password here, Google and Outlook through
OAuth (:mod:`calendars.service_layer.oauth`); both store the connection the same way."""

from __future__ import annotations

from datetime import datetime

from calendars.adapters import calendar_repo, connection_repo, owner_repo
from calendars.adapters.providers import CredentialsRejected, ProviderError
from calendars.adapters.ssrf import UrlRefused, check_url
from calendars.domain.remote import RemoteCalendar
from calendars.service_layer.connections import connection_info, tenant_connection
from calendars.service_layer.deps import CalendarsDeps
from calendars.service_layer.sync import sync_connection
from contracts import calendars as msg
from contracts.envelope import Message
from contracts.formats import IdPrefix, new_id
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError, require_tenant


async def connect_caldav(cmd: msg.ConnectCaldav, deps: CalendarsDeps) -> msg.ConnectionReply:
    tenant = require_tenant(cmd)
    try:
        check_url(cmd.server_url)
    except UrlRefused as exc:
        raise ServiceError(ErrorKind.INVALID, "url_refused", str(exc)) from exc
    if not cmd.username or not cmd.password:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_credentials", "A username and a password are needed."
        )
    provider = deps.providers.caldav(cmd.server_url, cmd.username, cmd.password)
    try:
        remote = await provider.list_calendars()
    except UrlRefused as exc:
        raise ServiceError(ErrorKind.INVALID, "url_refused", str(exc)) from exc
    except CredentialsRejected as exc:
        raise ServiceError(ErrorKind.INVALID, "credentials_rejected", str(exc)) from exc
    except ProviderError as exc:
        raise ServiceError(ErrorKind.UPSTREAM, "caldav_unreachable", str(exc)) from exc
    finally:
        await provider.aclose()
    connection_id = await store_connection(
        deps,
        cmd,
        msg.Provider.CALDAV,
        email=cmd.username if "@" in cmd.username else "",
        secret=cmd.password,
        server_url=cmd.server_url,
        username=cmd.username,
        remote=remote,
    )
    return await sync_and_describe(deps, tenant, connection_id)


async def store_connection(
    deps: CalendarsDeps,
    cause: Message,
    provider: msg.Provider,
    *,
    email: str,
    secret: str,
    remote: list[RemoteCalendar],
    server_url: str | None = None,
    username: str | None = None,
    access_token: str | None = None,
    access_expires_at: datetime | None = None,
) -> str:
    """Store a new connection and its calendars (the first writable one receives bookings),
    announce it; its id."""
    tenant = require_tenant(cause)
    connection_id = new_id(IdPrefix.CONNECTION)
    try:
        with connection_repo.one_per_provider():
            async with deps.uow() as uow:
                # a deleted tenant connects nothing (an OAuth flow finishing after the deletion)
                if (await owner_repo.lock(uow, tenant, share=True)).deleted:
                    raise ServiceError(
                        ErrorKind.NOT_FOUND, "tenant_deleted", "This account has been deleted."
                    )
                await connection_repo.add(
                    uow,
                    connection_id=connection_id,
                    tenant_id=tenant,
                    provider=provider.value,
                    email=email,
                    server_url=server_url,
                    username=username,
                    secret=deps.box.seal(secret),
                    access_token=deps.box.seal(access_token) if access_token else None,
                    access_expires_at=access_expires_at,
                    status=msg.ConnectionStatus.SYNCING.value,
                )
                first_writable = next((i for i, c in enumerate(remote) if c.writable), None)
                for index, cal in enumerate(remote):
                    await calendar_repo.add(
                        uow,
                        calendar_id=new_id(IdPrefix.CALENDAR),
                        connection_id=connection_id,
                        tenant_id=tenant,
                        remote_id=cal.id,
                        name=cal.name[:200],
                        writable=cal.writable,
                        receives_bookings=index == first_writable,
                    )
                row = await connection_repo.get(uow, connection_id)
                if row is None:  # written just now, in this transaction
                    raise RuntimeError(f"connection {connection_id} vanished in its transaction")
                await uow.add_event(
                    msg.CALENDAR_CONNECTED.subject,
                    msg.CalendarConnected(
                        **cause.caused(), connection=await connection_info(uow, row)
                    ),
                )
                await uow.commit()
    except connection_repo.AlreadyConnected as exc:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "already_connected",
            f"A {provider.value} calendar is already connected: disconnect it first.",
        ) from exc
    return connection_id


async def sync_and_describe(
    deps: CalendarsDeps, tenant_id: str, connection_id: str
) -> msg.ConnectionReply:
    """Sync the new connection once, then describe it as it is now."""
    await sync_connection(deps, connection_id)
    async with deps.uow() as uow:
        row = await tenant_connection(uow, tenant_id, connection_id)
        return msg.ConnectionReply(tenant_id=tenant_id, connection=await connection_info(uow, row))
