"""The tenant's activity feed: a projection of events (identity's own and other services'),
read newest first a page at a time."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from contracts import calendars as cal
from contracts import identity as msg
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError
from identity.adapters import activity
from identity.adapters.activity import Position
from identity.domain import activity as wording
from identity.domain.activity import Entry
from identity.service_layer.deps import IdentityDeps

_INT64 = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_cursor(last: Position) -> str:
    micros = (last.occurred_at - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"a:{micros}:{last.seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Position:
    """Where the previous page ended (its last item's time and sequence number)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, micros, seq = text.split(":")
        if kind != "a" or not (0 <= int(micros) <= _INT64 and 0 <= int(seq) <= _INT64):
            raise ValueError(kind)
        return Position(_EPOCH + timedelta(microseconds=int(micros)), int(seq))
    except (ValueError, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise ServiceError(ErrorKind.INVALID, "invalid_cursor", "The cursor is not valid.") from exc


async def list_activity(cmd: msg.ListActivity, deps: IdentityDeps) -> msg.ActivityPage:
    before = _decode_cursor(cmd.cursor) if cmd.cursor else None
    async with deps.uow() as uow:
        rows = await activity.newest_first(uow, cmd.tenant_id or "", cmd.limit + 1, before)
    page = rows[: cmd.limit]
    items = [
        msg.ActivityItem(
            id=str(row.seq),
            type=row.type,
            summary=row.summary,
            occurred_at=row.occurred_at,
            ids=row.ids,
        )
        for row in page
    ]
    more = len(rows) > cmd.limit
    last = page[-1] if page else None
    cursor = (
        _encode_cursor(Position(last.occurred_at, last.seq)) if more and last is not None else None
    )
    return msg.ActivityPage(items=items, next_cursor=cursor)


async def record(uow: UnitOfWork, event: Message, entry: Entry) -> None:
    """Project one event into its tenant's feed; its id makes a re-sent event a no-op."""
    if not event.tenant_id:
        return
    await activity.add_once(
        uow,
        event_id=event.message_id,
        tenant_id=event.tenant_id,
        kind=entry.kind,
        summary=entry.summary,
        occurred_at=event.occurred_at or datetime.now(UTC),
        ids=entry.ids,
    )


# --- the events the feed shows ---------------------------------------------------------------


async def on_tenant_created(event: msg.TenantCreated, deps: IdentityDeps, uow: UnitOfWork) -> None:
    await record(uow, event, wording.tenant_created(event))


async def on_settings_changed(
    event: msg.SettingsChanged, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.settings_changed(event))


async def on_api_key_created(
    event: msg.ApiKeyCreatedEvent, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.api_key_created(event))


async def on_api_key_revoked(event: msg.ApiKeyRevoked, deps: IdentityDeps, uow: UnitOfWork) -> None:
    await record(uow, event, wording.api_key_revoked(event))


async def on_calendar_connected(
    event: cal.CalendarConnected, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.calendar_connected(event))


async def on_calendar_disconnected(
    event: cal.CalendarDisconnected, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.calendar_disconnected(event))


async def on_calendar_sync_failed(
    event: cal.CalendarSyncFailed, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.calendar_sync_failed(event))


async def on_calendar_expired(
    event: cal.CalendarExpired, deps: IdentityDeps, uow: UnitOfWork
) -> None:
    await record(uow, event, wording.calendar_expired(event))
