"""Reading connections, choosing their calendars, and disconnecting."""

from __future__ import annotations

from calendars.adapters import calendar_repo, connection_repo
from calendars.adapters.connection_repo import Connection
from calendars.service_layer.deps import CalendarsDeps, parse_provider
from contracts import calendars as msg
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError, require_tenant


async def connection_info(uow: UnitOfWork, row: Connection) -> msg.ConnectionInfo:
    cals = await calendar_repo.of_connection(uow, row.id, by_name=True)
    return msg.ConnectionInfo(
        id=row.id,
        provider=msg.Provider(row.provider),
        email=row.email,
        status=msg.ConnectionStatus(row.status),
        status_reason=row.status_reason,
        last_synced_at=row.last_synced_at,
        calendar_count=len(cals),
        calendars=[
            msg.CalendarInfo(
                id=c.id,
                name=c.name,
                contributes_to_availability=c.contributes,
                receives_bookings=c.receives_bookings,
            )
            for c in cals
        ],
    )


async def list_connections(cmd: msg.ListConnections, deps: CalendarsDeps) -> msg.ConnectionList:
    tenant = require_tenant(cmd)
    async with deps.uow() as uow:
        rows = await connection_repo.list_of_tenant(uow, tenant)
        return msg.ConnectionList(connections=[await connection_info(uow, r) for r in rows])


async def tenant_connection(uow: UnitOfWork, tenant_id: str, connection_id: str) -> Connection:
    row = await connection_repo.of_tenant(uow, tenant_id, connection_id)
    if row is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND, "connection_not_found", "No such calendar connection."
        )
    return row


async def update_calendar(cmd: msg.UpdateCalendar, deps: CalendarsDeps) -> msg.ConnectionReply:
    tenant = require_tenant(cmd)
    async with deps.uow() as uow:
        cal = await calendar_repo.locked(uow, tenant, cmd.calendar_id)
        if cal is None:
            raise ServiceError(ErrorKind.NOT_FOUND, "calendar_not_found", "No such calendar.")
        if cmd.receives_bookings is not None:
            if cmd.receives_bookings and not cal.writable:
                raise ServiceError(
                    ErrorKind.INVALID, "read_only_calendar", "That calendar is read-only."
                )
            if cmd.receives_bookings:  # exactly one receiving calendar per tenant
                await calendar_repo.stop_receiving_others(uow, cal.tenant_id, cal.id)
        await calendar_repo.choose(
            uow,
            cal.id,
            contributes=cmd.contributes_to_availability,
            receives_bookings=cmd.receives_bookings,
        )
        row = await tenant_connection(uow, tenant, cal.connection_id)
        info = await connection_info(uow, row)
        await uow.add_event(
            msg.CALENDAR_SYNCED.subject,
            msg.CalendarSynced(
                **cmd.caused(), connection_id=row.id, provider=msg.Provider(row.provider)
            ),
        )
        await uow.commit()
    return msg.ConnectionReply(connection=info)


async def disconnect(cmd: msg.Disconnect, deps: CalendarsDeps) -> msg.Disconnected:
    tenant = require_tenant(cmd)
    provider = parse_provider(cmd.provider)
    async with deps.uow() as uow:
        # calendars and events go with it (ON DELETE CASCADE)
        gone = await connection_repo.delete_by_provider(uow, tenant, provider.value)
        if gone is None:
            raise ServiceError(
                ErrorKind.NOT_FOUND, "not_connected", f"No {provider.value} calendar is connected."
            )
        await uow.add_event(
            msg.CALENDAR_DISCONNECTED.subject,
            msg.CalendarDisconnected(**cmd.caused(), provider=provider, connection_id=gone),
        )
        await uow.commit()
    return msg.Disconnected(provider=provider)
