"""Free/busy: the owner's busy time in a range, and how sure calendars is of it."""

from __future__ import annotations

from calendars.adapters import connection_repo, event_repo
from calendars.domain import intervals
from calendars.service_layer.deps import CalendarsDeps
from calendars.service_layer.sync import sync_connection
from contracts import calendars as msg
from contracts.rpc import ErrorKind
from cortex_runtime.deadlines import refuse_if_past
from cortex_runtime.errors import ServiceError, require_tenant

KNOWN = {msg.ConnectionStatus.OK.value, msg.ConnectionStatus.SYNCING.value}
NAMED = 50  # the events named without explain


async def free_busy(cmd: msg.GetFreeBusy, deps: CalendarsDeps) -> msg.FreeBusy:
    """The tenant's busy time over the range, how sure it is, and the events behind it (the
    first 50 by start; every one with ``explain``), each with its calendar and, for one
    Cortex wrote, its booking."""
    tenant = require_tenant(cmd)
    if cmd.end <= cmd.start:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_range", "The range must end after it starts."
        )
    refuse_if_past(cmd.deadline)
    failed: set[str] = set()
    if cmd.live:
        async with deps.uow() as uow:
            ids = await connection_repo.ids_of_tenant(uow, tenant)
        for connection_id in ids:
            refuse_if_past(cmd.deadline)  # the saga stopped waiting: no more provider calls
            if not await sync_connection(deps, connection_id, live=True):
                failed.add(connection_id)
    # two autocommit reads: a change between them (a sync replaces a calendar's events in
    # one transaction) shows either side of it, never half of one
    async with deps.read() as uow:
        sources = await event_repo.sources(uow, tenant)
        rows = await event_repo.busy(uow, tenant, cmd.start, cmd.end)
    busy = intervals.merge(
        intervals.clip([(r.start_at, r.end_at) for r in rows], cmd.start, cmd.end)
    )
    statuses = []
    for s in sources:
        known = s.status in KNOWN and s.connection_id not in failed
        statuses.append(
            msg.SourceStatus(
                connection_id=s.connection_id,
                provider=msg.Provider(s.provider),
                calendar_id=s.calendar_id,
                status=msg.ConnectionStatus(s.status),
                known=known,
                reason=None if known else (s.status_reason or "The calendar could not be read."),
            )
        )
    unknown = (
        [] if all(s.known for s in statuses) else [msg.BusyInterval(start=cmd.start, end=cmd.end)]
    )
    named = sorted(rows, key=lambda r: (r.start_at, r.end_at, r.calendar_id))
    if not cmd.explain:
        named = named[:NAMED]
    return msg.FreeBusy(
        busy=[msg.BusyInterval(start=a, end=b) for a, b in busy],
        events=[
            msg.BusyEvent(
                start=r.start_at,
                end=r.end_at,
                summary=r.summary,
                calendar_id=r.calendar_id,
                calendar_name=r.calendar_name,
                booking_id=r.booking_id,
            )
            for r in named
        ],
        sources=statuses,
        unknown=unknown,
    )
