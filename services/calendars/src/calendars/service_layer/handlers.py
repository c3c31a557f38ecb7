"""Calendars' handlers: connections, sync, free/busy and the saga's event writes."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from calendars.adapters.providers import (
    CalendarProvider,
    CredentialsRejected,
    ProviderError,
    RemoteEvent,
    SyncTokenExpired,
)
from calendars.adapters.secrets import SecretBox
from calendars.adapters.ssrf import UrlRefused, check_url
from calendars.adapters.tables import (
    booking_events,
    booking_tombstones,
    calendars,
    connections,
    events,
    oauth_states,
    owners,
)
from calendars.domain import intervals
from calendars.domain.ical import wall_clock_to_utc
from contracts import calendars as msg
from contracts import identity
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.deadlines import refuse_if_past
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]


@dataclass
class OAuthGrant:
    refresh_token: str
    access_token: str
    expires_at: datetime
    email: str


class Providers:
    """How handlers reach providers: built by bootstrap from settings."""

    def __init__(
        self,
        open_connection: Callable[[Any, str], Awaitable[CalendarProvider]],
        caldav: Callable[[str, str, str], CalendarProvider],
        oauth_url: Callable[[str, str, str, str], str],
        oauth_exchange: Callable[[str, str, str, str], Awaitable[OAuthGrant]],
    ) -> None:
        # (row, the owner's zone) -> provider (refreshing OAuth tokens)
        self.open_connection = open_connection
        self.caldav = caldav  # (server_url, username, password) -> provider
        self.oauth_url = oauth_url  # (provider, state, challenge, redirect_uri) -> URL
        self.oauth_exchange = oauth_exchange  # (provider, code, verifier, redirect_uri)


@dataclass
class Context:
    uow: UowFactory
    box: SecretBox
    providers: Providers
    horizon_days: int
    sync_interval: timedelta
    # reads outside any transaction (autocommit); the write unit of work when not given
    read: UowFactory | None = None

    def reader(self) -> UnitOfWork:
        return (self.read or self.uow)()


def _id(kind: str) -> str:
    return f"{kind}_{uuid.uuid4().hex[:20]}"


def parse_provider(value: str) -> msg.Provider:
    try:
        return msg.Provider(value)
    except ValueError as exc:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_provider", "The provider must be google, outlook or caldav."
        ) from exc


def _horizon(ctx: Context) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=1), now + timedelta(days=ctx.horizon_days)


# --- the owner: a projection of identity's settings ------------------------------------------

DEFAULT_ZONE = "UTC"


def _valid_zone(name: str) -> str:
    """Identity accepts only IANA names; anything else is read as UTC rather than crash."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown owner time zone; using UTC", extra={"timezone": name[:100]})
        return DEFAULT_ZONE
    return name


async def _owner_zone(uow: UnitOfWork, tenant_id: str) -> str:
    """The zone the owner's floating and all-day times are read in (UTC until known)."""
    zone = (
        await uow.execute(sa.select(owners.c.timezone).where(owners.c.tenant_id == tenant_id))
    ).scalar()
    return str(zone) if zone else DEFAULT_ZONE


async def _lock_owner(uow: UnitOfWork, tenant_id: str, *, share: bool) -> sa.Row[Any]:
    """The owner's row, locked (made if calendars has not heard of the owner yet): the
    owner's changes (zone, deletion) and new connections take their turns on it."""
    await uow.execute(pg_insert(owners).values(tenant_id=tenant_id).on_conflict_do_nothing())
    query = sa.select(owners).where(owners.c.tenant_id == tenant_id)
    return (await uow.execute(query.with_for_update(read=share))).one()


def _is_newer(settings_version: int, updated_at: datetime | None, row: Any) -> bool:
    """Events arrive out of order: apply only a newer version (by ``updated_at`` while
    neither side has a version yet)."""
    if settings_version or row.settings_version:
        return bool(settings_version > row.settings_version)
    return row.settings_updated_at is None or (
        updated_at is not None and updated_at >= row.settings_updated_at
    )


async def project_owner(uow: UnitOfWork, cause: Any, settings: identity.TenantSettings) -> None:
    """Keep the owner's zone (from tenant_created / settings_changed); when it changes,
    place the stored floating and all-day events again in the new zone."""
    row = await _lock_owner(uow, settings.tenant_id, share=False)
    if row.deleted or not _is_newer(settings.version, settings.updated_at, row):
        return
    zone = _valid_zone(settings.timezone)
    await uow.execute(
        sa.update(owners)
        .where(owners.c.tenant_id == settings.tenant_id)
        .values(
            timezone=zone,
            settings_version=settings.version,
            settings_updated_at=settings.updated_at,
        )
    )
    if zone != row.timezone:
        await _place_local_times(uow, cause, settings.tenant_id, zone)


async def apply_owner_settings(
    cmd: identity.ApplyOwnerSettings, ctx: Context
) -> identity.OwnerSettingsApplied:
    """The gateway's hand-over of settings identity just committed (read-your-writes)."""
    async with ctx.uow() as uow:
        await project_owner(uow, cmd, cmd.settings)
        held = (
            await uow.execute(
                sa.select(owners.c.settings_version).where(
                    owners.c.tenant_id == cmd.settings.tenant_id
                )
            )
        ).scalar()
        await uow.commit()
    return identity.OwnerSettingsApplied(**cmd.caused(), settings_version=int(held or 0))


async def _place_local_times(uow: UnitOfWork, cause: Any, tenant_id: str, zone: str) -> None:
    """Compute start/end of every event that follows the owner's zone again, calendar by
    calendar under the lock syncs take to write them; announce it (cached free/busy)."""
    cals = (
        await uow.execute(
            sa.select(calendars.c.id, calendars.c.connection_id, connections.c.provider)
            .join(connections, connections.c.id == calendars.c.connection_id)
            .where(calendars.c.tenant_id == tenant_id)
            .order_by(calendars.c.id)
        )
    ).all()
    changed: dict[str, str] = {}
    for cal in cals:
        await _lock_calendar_events(uow, cal.id)
        rows = (
            await uow.execute(
                sa.select(
                    events.c.object_key,
                    events.c.recurrence_id,
                    events.c.local_start,
                    events.c.local_end,
                ).where(events.c.calendar_id == cal.id, events.c.local_start.is_not(None))
            )
        ).all()
        if not rows:
            continue
        await uow.execute(
            sa.update(events)
            .where(
                events.c.calendar_id == cal.id,
                events.c.object_key == sa.bindparam("key"),
                events.c.recurrence_id == sa.bindparam("rid"),
            )
            .values(start_at=sa.bindparam("new_start"), end_at=sa.bindparam("new_end")),
            [
                {
                    "key": r.object_key,
                    "rid": r.recurrence_id,
                    "new_start": wall_clock_to_utc(r.local_start, zone),
                    "new_end": max(
                        wall_clock_to_utc(r.local_start, zone),
                        wall_clock_to_utc(r.local_end, zone),
                    ),
                }
                for r in rows
            ],
        )
        changed[cal.connection_id] = cal.provider
    for connection_id, provider in changed.items():
        await uow.add_event(
            msg.CALENDAR_SYNCED.subject,
            msg.CalendarSynced(
                **cause.caused(tenant_id=tenant_id),
                connection_id=connection_id,
                provider=msg.Provider(provider),
            ),
        )


async def forget_tenant(uow: UnitOfWork, cause: Any, tenant_id: str, settings_version: int) -> None:
    """The tenant was deleted: its credentials, calendars, synced events and booking-event
    records go, so nothing of it is synced again; the owner's row stays, marked deleted,
    so that no late event or connection brings anything back. Events Cortex wrote to the
    owner's calendars stay there: they are the owner's."""
    await _lock_owner(uow, tenant_id, share=False)
    await uow.execute(
        sa.update(owners)
        .where(owners.c.tenant_id == tenant_id)
        .values(
            deleted=True,
            settings_version=sa.func.greatest(owners.c.settings_version, settings_version),
        )
    )
    gone = (
        await uow.execute(
            sa.delete(connections)  # calendars and events go with it (ON DELETE CASCADE)
            .where(connections.c.tenant_id == tenant_id)
            .returning(connections.c.id, connections.c.provider)
        )
    ).all()
    for table in (oauth_states, booking_events, booking_tombstones):
        await uow.execute(sa.delete(table).where(table.c.tenant_id == tenant_id))
    for row in gone:
        await uow.add_event(
            msg.CALENDAR_DISCONNECTED.subject,
            msg.CalendarDisconnected(
                **cause.caused(tenant_id=tenant_id),
                provider=msg.Provider(row.provider),
                connection_id=row.id,
            ),
        )
    if gone:
        log.info("deleted tenant's calendars removed", extra={"tenant_id": tenant_id})


# --- reading connections --------------------------------------------------------------------


async def _connection_info(uow: UnitOfWork, row: sa.Row[Any]) -> msg.ConnectionInfo:
    cals = (
        await uow.execute(
            sa.select(calendars)
            .where(calendars.c.connection_id == row.id)
            .order_by(calendars.c.name)
        )
    ).all()
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


async def list_connections(cmd: msg.ListConnections, ctx: Context) -> msg.ConnectionList:
    async with ctx.uow() as uow:
        rows = (
            await uow.execute(
                sa.select(connections)
                .where(connections.c.tenant_id == (cmd.tenant_id or ""))
                .order_by(connections.c.created_at)
            )
        ).all()
        return msg.ConnectionList(connections=[await _connection_info(uow, r) for r in rows])


async def _connection(uow: UnitOfWork, tenant_id: str | None, connection_id: str) -> sa.Row[Any]:
    row = (
        await uow.execute(
            sa.select(connections).where(
                connections.c.id == connection_id, connections.c.tenant_id == (tenant_id or "")
            )
        )
    ).first()
    if row is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND, "connection_not_found", "No such calendar connection."
        )
    return row


# --- connecting ----------------------------------------------------------------------------


async def connect_caldav(cmd: msg.ConnectCaldav, ctx: Context) -> msg.ConnectionReply:
    try:
        check_url(cmd.server_url)
    except UrlRefused as exc:
        raise ServiceError(ErrorKind.INVALID, "url_refused", str(exc)) from exc
    if not cmd.username or not cmd.password:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_credentials", "A username and a password are needed."
        )
    provider = ctx.providers.caldav(cmd.server_url, cmd.username, cmd.password)
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
    connection_id = await _store_connection(
        ctx,
        cmd,
        msg.Provider.CALDAV,
        email=cmd.username if "@" in cmd.username else "",
        secret=cmd.password,
        server_url=cmd.server_url,
        username=cmd.username,
        remote=[(c.id, c.name, c.writable) for c in remote],
    )
    return await _sync_and_describe(ctx, cmd.tenant_id, connection_id)


async def _store_connection(
    ctx: Context,
    cause: Any,
    provider: msg.Provider,
    *,
    email: str,
    secret: str,
    remote: list[tuple[str, str, bool]],
    server_url: str | None = None,
    username: str | None = None,
    access_token: str | None = None,
    access_expires_at: datetime | None = None,
) -> str:
    connection_id = _id("conn")
    try:
        async with ctx.uow() as uow:
            # a deleted tenant connects nothing (an OAuth flow finishing after the deletion)
            if (await _lock_owner(uow, cause.tenant_id or "", share=True)).deleted:
                raise ServiceError(
                    ErrorKind.NOT_FOUND, "tenant_deleted", "This account has been deleted."
                )
            await uow.execute(
                sa.insert(connections).values(
                    id=connection_id,
                    tenant_id=cause.tenant_id,
                    provider=provider.value,
                    email=email,
                    server_url=server_url,
                    username=username,
                    secret=ctx.box.seal(secret),
                    access_token=ctx.box.seal(access_token) if access_token else None,
                    access_expires_at=access_expires_at,
                    status=msg.ConnectionStatus.SYNCING.value,
                )
            )
            first_writable = next((i for i, c in enumerate(remote) if c[2]), None)
            for index, (remote_id, name, writable) in enumerate(remote):
                await uow.execute(
                    sa.insert(calendars).values(
                        id=_id("cal"),
                        connection_id=connection_id,
                        tenant_id=cause.tenant_id,
                        remote_id=remote_id,
                        name=name[:200],
                        writable=writable,
                        receives_bookings=index == first_writable,
                    )
                )
            row = (
                await uow.execute(sa.select(connections).where(connections.c.id == connection_id))
            ).one()
            await uow.add_event(
                msg.CALENDAR_CONNECTED.subject,
                msg.CalendarConnected(
                    **cause.caused(), connection=await _connection_info(uow, row)
                ),
            )
            await uow.commit()
    except IntegrityError as exc:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "already_connected",
            f"A {provider.value} calendar is already connected: disconnect it first.",
        ) from exc
    return connection_id


async def _sync_and_describe(
    ctx: Context, tenant_id: str | None, connection_id: str
) -> msg.ConnectionReply:
    await sync_connection(ctx, connection_id)
    async with ctx.uow() as uow:
        row = await _connection(uow, tenant_id, connection_id)
        return msg.ConnectionReply(tenant_id=tenant_id, connection=await _connection_info(uow, row))


async def start_oauth(cmd: msg.StartOAuth, ctx: Context) -> msg.OAuthStarted:
    provider = parse_provider(cmd.provider)
    if provider is msg.Provider.CALDAV:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_provider", "CalDAV connects with a username and password."
        )
    from calendars.adapters.oauth import new_pkce

    verifier, challenge = new_pkce()
    state = secrets.token_urlsafe(24)
    async with ctx.uow() as uow:
        await uow.execute(sa.delete(oauth_states).where(oauth_states.c.expires_at < sa.func.now()))
        await uow.execute(
            sa.insert(oauth_states).values(
                state=state,
                tenant_id=cmd.tenant_id,
                provider=provider.value,
                code_verifier=ctx.box.seal(verifier),
                redirect_uri=cmd.redirect_uri,
                expires_at=datetime.now(UTC) + timedelta(minutes=10),
            )
        )
        await uow.commit()
    url = ctx.providers.oauth_url(provider.value, state, challenge, cmd.redirect_uri)
    return msg.OAuthStarted(authorization_url=url, state=state)


_OAUTH_STATE = re.compile(r"[A-Za-z0-9_-]{1,200}")
"""What start_oauth issues (``secrets.token_urlsafe``); anything else is unknown."""


def _unknown_state() -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID, "invalid_state", "The authorization state is unknown or expired."
    )


async def complete_oauth(cmd: msg.CompleteOAuth, ctx: Context) -> msg.ConnectionReply:
    provider = parse_provider(cmd.provider)
    if not _OAUTH_STATE.fullmatch(cmd.state):  # e.g. a NUL byte, which PostgreSQL refuses
        raise _unknown_state()
    async with ctx.uow() as uow:
        row = (
            await uow.execute(
                sa.delete(oauth_states)
                .where(
                    oauth_states.c.state == cmd.state,
                    oauth_states.c.provider == provider.value,
                    oauth_states.c.expires_at > sa.func.now(),
                )
                .returning(oauth_states)
            )
        ).first()
        await uow.commit()
    if row is None:
        raise _unknown_state()
    try:
        grant = await ctx.providers.oauth_exchange(
            provider.value, cmd.code, ctx.box.open(row.code_verifier), row.redirect_uri
        )
    except CredentialsRejected as exc:
        raise ServiceError(ErrorKind.INVALID, "authorization_rejected", str(exc)) from exc
    except ProviderError as exc:
        raise ServiceError(ErrorKind.UPSTREAM, "provider_unreachable", str(exc)) from exc
    cause = msg.CompleteOAuth(
        **cmd.caused(tenant_id=row.tenant_id), provider=cmd.provider, code="-", state="-"
    )
    unsaved = {  # the connection as it will be stored, to list its calendars first
        "id": "",
        "provider": provider.value,
        "secret": ctx.box.seal(grant.refresh_token),
        "access_token": ctx.box.seal(grant.access_token),
        "access_expires_at": grant.expires_at,
        "tenant_id": row.tenant_id,
    }
    client = await ctx.providers.open_connection(SimpleNamespace(**unsaved), DEFAULT_ZONE)
    try:
        remote = await client.list_calendars()
    except ProviderError as exc:
        raise ServiceError(ErrorKind.UPSTREAM, "provider_unreachable", str(exc)) from exc
    finally:
        await client.aclose()
    connection_id = await _store_connection(
        ctx,
        cause,
        provider,
        email=grant.email,
        secret=grant.refresh_token,
        access_token=grant.access_token,
        access_expires_at=grant.expires_at,
        remote=[(c.id, c.name, c.writable) for c in remote],
    )
    return await _sync_and_describe(ctx, row.tenant_id, connection_id)


# --- choosing calendars and disconnecting ----------------------------------------------------


async def update_calendar(cmd: msg.UpdateCalendar, ctx: Context) -> msg.ConnectionReply:
    async with ctx.uow() as uow:
        cal = (
            await uow.execute(
                sa.select(calendars)
                .where(
                    calendars.c.id == cmd.calendar_id,
                    calendars.c.tenant_id == (cmd.tenant_id or ""),
                )
                .with_for_update()
            )
        ).first()
        if cal is None:
            raise ServiceError(ErrorKind.NOT_FOUND, "calendar_not_found", "No such calendar.")
        changes: dict[str, Any] = {}
        if cmd.contributes_to_availability is not None:
            changes["contributes"] = cmd.contributes_to_availability
        if cmd.receives_bookings is not None:
            if cmd.receives_bookings and not cal.writable:
                raise ServiceError(
                    ErrorKind.INVALID, "read_only_calendar", "That calendar is read-only."
                )
            if cmd.receives_bookings:  # exactly one receiving calendar per tenant
                await uow.execute(
                    sa.update(calendars)
                    .where(calendars.c.tenant_id == cal.tenant_id, calendars.c.id != cal.id)
                    .values(receives_bookings=False)
                )
            changes["receives_bookings"] = cmd.receives_bookings
        if changes:
            await uow.execute(
                sa.update(calendars).where(calendars.c.id == cal.id).values(**changes)
            )
        row = await _connection(uow, cmd.tenant_id, cal.connection_id)
        info = await _connection_info(uow, row)
        await uow.add_event(
            msg.CALENDAR_SYNCED.subject,
            msg.CalendarSynced(
                **cmd.caused(), connection_id=row.id, provider=msg.Provider(row.provider)
            ),
        )
        await uow.commit()
    return msg.ConnectionReply(connection=info)


async def disconnect(cmd: msg.Disconnect, ctx: Context) -> msg.Disconnected:
    provider = parse_provider(cmd.provider)
    async with ctx.uow() as uow:
        row = (
            await uow.execute(
                sa.delete(connections)  # calendars and events go with it (ON DELETE CASCADE)
                .where(
                    connections.c.tenant_id == (cmd.tenant_id or ""),
                    connections.c.provider == provider.value,
                )
                .returning(connections.c.id)
            )
        ).first()
        if row is None:
            raise ServiceError(
                ErrorKind.NOT_FOUND, "not_connected", f"No {provider.value} calendar is connected."
            )
        await uow.add_event(
            msg.CALENDAR_DISCONNECTED.subject,
            msg.CalendarDisconnected(**cmd.caused(), provider=provider, connection_id=row.id),
        )
        await uow.commit()
    return msg.Disconnected(provider=provider)


# --- sync --------------------------------------------------------------------------------------


def _event_row(calendar_row: Any, event: RemoteEvent, zone: str) -> dict[str, Any]:
    start, end = event.start, event.end
    if event.local_start is not None and event.local_end is not None:
        # read in the zone the owner has now (the provider may have read another)
        start = wall_clock_to_utc(event.local_start, zone)
        end = max(start, wall_clock_to_utc(event.local_end, zone))
    return {
        "calendar_id": calendar_row.id,
        "object_key": event.key,
        "uid": event.uid,
        "recurrence_id": event.recurrence_id,
        "tenant_id": calendar_row.tenant_id,
        "start_at": start,
        "end_at": end,
        "local_start": event.local_start if event.local_end is not None else None,
        "local_end": event.local_end if event.local_start is not None else None,
        "summary": event.summary[:500],
        "status": event.status,
        "transparent": event.transparent,
        "all_day": event.all_day,
    }


async def _lock_calendar_for_write(uow: UnitOfWork, calendar_row: Any) -> str | None:
    """Take the calendar's events lock; the owner's zone now, or None when the calendar
    is gone meanwhile (disconnected, tenant deleted): nothing is then written.

    The owner's zone is read under the lock a zone change takes too: either this write
    sees the new zone, or the change, waiting for the lock, places what it wrote."""
    await _lock_calendar_events(uow, calendar_row.id)
    still = (
        await uow.execute(
            sa.select(calendars.c.id)
            .where(calendars.c.id == calendar_row.id)
            .with_for_update(read=True, key_share=True)
        )
    ).first()
    if still is None:
        return None
    return await _owner_zone(uow, calendar_row.tenant_id)


async def _insert_events(
    uow: UnitOfWork, calendar_row: Any, found: list[RemoteEvent], zone: str
) -> None:
    rows = {(e.key, e.recurrence_id): _event_row(calendar_row, e, zone) for e in found}
    if rows:
        await uow.execute(pg_insert(events).on_conflict_do_nothing(), list(rows.values()))


_SYNCS: dict[str, asyncio.Lock] = {}


async def sync_connection(ctx: Context, connection_id: str, live: bool = False) -> bool:
    """Bring the stored events of one connection up to date; False if the source failed.

    ``live`` uses each calendar's sync token (only what changed); otherwise the whole
    horizon is read again. Failures set the connection's status and emit an event.

    One sync of a connection at a time in this process (concurrent live checks of one owner
    queue; each still reads what changed since the one before it), and one write of a
    calendar's events at a time across replicas: two syncs replacing the same events at once
    deadlocked on their rows.
    """
    lock = _SYNCS.setdefault(connection_id, asyncio.Lock())
    async with lock:
        return await _sync_connection(ctx, connection_id, live)


async def _sync_connection(ctx: Context, connection_id: str, live: bool) -> bool:
    async with ctx.uow() as uow:
        row = (
            await uow.execute(sa.select(connections).where(connections.c.id == connection_id))
        ).first()
        if row is None:
            return False
        cals = (
            await uow.execute(sa.select(calendars).where(calendars.c.connection_id == row.id))
        ).all()
        zone = await _owner_zone(uow, row.tenant_id)
    start, end = _horizon(ctx)
    provider: CalendarProvider | None = None
    try:
        provider = await ctx.providers.open_connection(row, zone)
        for cal in cals:
            await _sync_calendar(ctx, provider, cal, start, end, incremental=live)
    except CredentialsRejected as exc:
        await _mark(ctx, row, msg.ConnectionStatus.EXPIRED, str(exc))
        return False
    except (ProviderError, UrlRefused) as exc:
        await _mark(ctx, row, msg.ConnectionStatus.ERROR, str(exc))
        return False
    finally:
        if provider is not None:
            await provider.aclose()
    await _mark(ctx, row, msg.ConnectionStatus.OK, None)
    return True


async def _sync_calendar(
    ctx: Context,
    provider: CalendarProvider,
    cal: Any,
    start: datetime,
    end: datetime,
    incremental: bool,
) -> None:
    if incremental and cal.sync_token:
        try:
            changes = await provider.changes_since(cal.remote_id, cal.sync_token, start, end)
        except SyncTokenExpired:
            changes = None
        if changes is not None:
            if changes.changed_uids or changes.removed_uids or changes.sync_token != cal.sync_token:
                async with ctx.uow() as uow:
                    zone = await _lock_calendar_for_write(uow, cal)
                    if zone is None:
                        return
                    gone = changes.changed_uids | changes.removed_uids
                    if gone:
                        await uow.execute(
                            sa.delete(events).where(
                                events.c.calendar_id == cal.id, events.c.object_key.in_(gone)
                            )
                        )
                    await _insert_events(uow, cal, changes.changed, zone)
                    await uow.execute(
                        sa.update(calendars)
                        .where(calendars.c.id == cal.id)
                        .values(sync_token=changes.sync_token)
                    )
                    await uow.commit()
            return
    window = await provider.fetch_window(cal.remote_id, start, end)
    async with ctx.uow() as uow:
        zone = await _lock_calendar_for_write(uow, cal)
        if zone is None:
            return
        await uow.execute(sa.delete(events).where(events.c.calendar_id == cal.id))
        await _insert_events(uow, cal, window.events, zone)
        await uow.execute(
            sa.update(calendars)
            .where(calendars.c.id == cal.id)
            .values(sync_token=window.sync_token)
        )
        await uow.commit()


async def _lock_calendar_events(uow: UnitOfWork, calendar_id: str) -> None:
    """One transaction at a time replaces a calendar's stored events, across replicas."""
    key = sa.func.hashtext(f"calendar_events:{calendar_id}")
    await uow.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


FAILED_SYNC_RETRY = timedelta(seconds=10)


async def _mark(ctx: Context, row: Any, status: msg.ConnectionStatus, reason: str | None) -> None:
    cause = msg.SyncNow(tenant_id=row.tenant_id)
    provider = msg.Provider(row.provider)
    async with ctx.uow() as uow:
        values: dict[str, Any] = {"status": status.value, "status_reason": reason}
        # a source that failed is tried again soon: until it answers, its time is unknown
        # and nothing there can be booked (an expired grant waits for the owner instead)
        again = ctx.sync_interval
        if status is msg.ConnectionStatus.ERROR:
            again = min(again, FAILED_SYNC_RETRY)
        values["next_sync_at"] = datetime.now(UTC) + again
        if status is msg.ConnectionStatus.OK:
            values["last_synced_at"] = sa.func.now()
        previous = (
            await uow.execute(
                sa.update(connections)
                .where(connections.c.id == row.id)
                .values(**values)
                .returning(connections.c.status)
            )
        ).first()
        if previous is None:  # disconnected meanwhile
            return
        if status is msg.ConnectionStatus.EXPIRED:
            if row.status != status.value:  # announced once; still expired: nothing changed
                await uow.add_event(
                    msg.CALENDAR_EXPIRED.subject,
                    msg.CalendarExpired(**cause.caused(), connection_id=row.id, provider=provider),
                )
        elif status is msg.ConnectionStatus.ERROR:
            await uow.add_event(
                msg.CALENDAR_SYNC_FAILED.subject,
                msg.CalendarSyncFailed(
                    **cause.caused(), connection_id=row.id, provider=provider, reason=reason or ""
                ),
            )
        else:
            await uow.add_event(
                msg.CALENDAR_SYNCED.subject,
                msg.CalendarSynced(**cause.caused(), connection_id=row.id, provider=provider),
            )
        await uow.commit()
    if status is not msg.ConnectionStatus.OK:
        log.warning(
            "calendar sync failed",
            extra={"connection_id": row.id, "status": status.value, "reason": reason},
        )


async def sync_now(cmd: msg.SyncNow, ctx: Context) -> msg.ConnectionList:
    async with ctx.uow() as uow:
        ids = (
            (
                await uow.execute(
                    sa.select(connections.c.id).where(
                        connections.c.tenant_id == (cmd.tenant_id or "")
                    )
                )
            )
            .scalars()
            .all()
        )
    for connection_id in ids:
        await sync_connection(ctx, connection_id, live=True)
    return await list_connections(msg.ListConnections(**cmd.caused()), ctx)


async def sync_due(ctx: Context, limit: int = 10) -> int:
    """One pass of the scheduled sync: claim due connections so replicas never collide."""
    async with ctx.uow() as uow:
        due = (
            (
                await uow.execute(
                    sa.update(connections)
                    .where(
                        connections.c.id.in_(
                            sa.select(connections.c.id)
                            .where(connections.c.next_sync_at <= sa.func.now())
                            .order_by(connections.c.next_sync_at)
                            .limit(limit)
                            .with_for_update(skip_locked=True)
                        )
                    )
                    .values(next_sync_at=datetime.now(UTC) + ctx.sync_interval)
                    .returning(connections.c.id)
                )
            )
            .scalars()
            .all()
        )
        await uow.commit()
    for connection_id in due:
        await sync_connection(ctx, connection_id, live=True)
    return len(due)


# --- free/busy ---------------------------------------------------------------------------------

KNOWN = {msg.ConnectionStatus.OK.value, msg.ConnectionStatus.SYNCING.value}


async def free_busy(cmd: msg.GetFreeBusy, ctx: Context) -> msg.FreeBusy:
    if cmd.end <= cmd.start:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_range", "The range must end after it starts."
        )
    refuse_if_past(cmd.deadline)
    tenant = cmd.tenant_id or ""
    failed: set[str] = set()
    if cmd.live:
        async with ctx.uow() as uow:
            ids = (
                (
                    await uow.execute(
                        sa.select(connections.c.id).where(connections.c.tenant_id == tenant)
                    )
                )
                .scalars()
                .all()
            )
        for connection_id in ids:
            refuse_if_past(cmd.deadline)  # the saga stopped waiting: no more provider calls
            if not await sync_connection(ctx, connection_id, live=True):
                failed.add(connection_id)
    # two autocommit reads: a change between them (a sync replaces a calendar's events in
    # one transaction) shows either side of it, never half of one
    async with ctx.reader() as uow:
        sources = (
            await uow.execute(
                sa.select(
                    calendars.c.id,
                    calendars.c.connection_id,
                    connections.c.provider,
                    connections.c.status,
                    connections.c.status_reason,
                )
                .join(connections, connections.c.id == calendars.c.connection_id)
                .where(calendars.c.tenant_id == tenant, calendars.c.contributes.is_(True))
            )
        ).all()
        rows = (
            await uow.execute(
                sa.select(events.c.start_at, events.c.end_at, events.c.summary)
                .join(calendars, calendars.c.id == events.c.calendar_id)
                .where(
                    events.c.tenant_id == tenant,
                    calendars.c.contributes.is_(True),
                    events.c.start_at < cmd.end,
                    events.c.end_at > cmd.start,
                    events.c.status != "cancelled",
                    events.c.transparent.is_(False),
                )
            )
        ).all()
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
                calendar_id=s.id,
                status=msg.ConnectionStatus(s.status),
                known=known,
                reason=None if known else (s.status_reason or "The calendar could not be read."),
            )
        )
    unknown = (
        [] if all(s.known for s in statuses) else [msg.BusyInterval(start=cmd.start, end=cmd.end)]
    )
    named = sorted(rows, key=lambda r: (r.start_at, r.end_at))[:50]
    return msg.FreeBusy(
        busy=[msg.BusyInterval(start=a, end=b) for a, b in busy],
        events=[msg.BusyEvent(start=r.start_at, end=r.end_at, summary=r.summary) for r in named],
        sources=statuses,
        unknown=unknown,
    )


# --- the saga's event writes ----------------------------------------------------------------------


async def _lock_booking_event(uow: UnitOfWork, booking_id: str) -> None:
    """Serialise the write and the delete of one booking's event, across replicas, until
    the transaction ends: a compensating delete waits for a write still under way."""
    key = sa.func.hashtext(f"booking_event:{booking_id}")
    await uow.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _event_deleted() -> ServiceError:
    return ServiceError(
        ErrorKind.CONFLICT,
        "booking_event_deleted",
        "The booking's event was deleted after this write was sent (the booking was undone "
        "or ended): it is not written.",
    )


async def _refuse_if_deleted_since(uow: UnitOfWork, cmd: msg.WriteBookingEvent) -> None:
    """A delete of the booking's event refuses every write sent before it (a late write,
    still queued when the saga gave up and compensated); a write sent after a delete is a
    new decision of the saga's and goes ahead. Under the booking's lock."""
    deleted_at = (
        await uow.execute(
            sa.select(booking_tombstones.c.deleted_issued_at).where(
                booking_tombstones.c.booking_id == cmd.booking_id
            )
        )
    ).scalar()
    if deleted_at is not None and _aware(cmd.occurred_at) <= deleted_at:
        raise _event_deleted()


async def _leave_tombstone(uow: UnitOfWork, cmd: msg.DeleteBookingEvent, tenant: str) -> None:
    statement = pg_insert(booking_tombstones).values(
        booking_id=cmd.booking_id, tenant_id=tenant, deleted_issued_at=_aware(cmd.occurred_at)
    )
    await uow.execute(
        statement.on_conflict_do_update(
            index_elements=["booking_id"],
            set_={
                "deleted_issued_at": sa.func.greatest(
                    booking_tombstones.c.deleted_issued_at, statement.excluded.deleted_issued_at
                )
            },
        )
    )


TOMBSTONE_KEEP = timedelta(days=7)


async def purge_tombstones(ctx: Context) -> int:
    """Forget tombstones long past any write they could refuse (every write carries a
    deadline of seconds; a week covers writes from before deadlines existed)."""
    async with ctx.uow() as uow:
        purged = (
            await uow.execute(
                sa.delete(booking_tombstones)
                .where(booking_tombstones.c.created_at < datetime.now(UTC) - TOMBSTONE_KEEP)
                .returning(booking_tombstones.c.booking_id)
            )
        ).all()
        await uow.commit()
    return len(purged)


async def _receiving_calendar(uow: UnitOfWork, tenant: str) -> sa.Row[Any] | None:
    return (
        await uow.execute(
            sa.select(calendars.c.remote_id, connections)
            .join(connections, connections.c.id == calendars.c.connection_id)
            .where(calendars.c.tenant_id == tenant, calendars.c.receives_bookings.is_(True))
        )
    ).first()


async def write_booking_event(cmd: msg.WriteBookingEvent, ctx: Context) -> msg.BookingEventWritten:
    """Write the booking's event (UID = booking id) to the receiving calendar, once.

    The provider call runs inside the transaction that records it, under the booking's
    lock: if the record cannot be committed after the provider wrote, the delete below still
    finds the event by its UID. A write arriving after its deadline (the saga stopped
    waiting for it), or sent before a delete of the booking's event, is refused: it would
    create an event for a booking that failed."""
    tenant = cmd.tenant_id or ""
    refuse_if_past(cmd.deadline)
    async with ctx.uow() as uow:
        await _lock_booking_event(uow, cmd.booking_id)
        refuse_if_past(cmd.deadline)  # waiting for the lock may have used it up
        await _refuse_if_deleted_since(uow, cmd)
        done = (
            await uow.execute(
                sa.select(booking_events, connections.c.provider)
                .join(connections, connections.c.id == booking_events.c.connection_id)
                .where(
                    booking_events.c.booking_id == cmd.booking_id,
                    booking_events.c.tenant_id == tenant,
                )
            )
        ).first()
        if done is not None and done.deleted_at is None:
            return msg.BookingEventWritten(
                booking_id=cmd.booking_id,
                provider=msg.Provider(done.provider),
                calendar_id=done.remote_calendar_id,
                uid=done.uid,
            )
        target = await _receiving_calendar(uow, tenant)
        if target is None:
            return msg.BookingEventWritten(
                booking_id=cmd.booking_id, provider=None, calendar_id=None, uid=None
            )
        uid = cmd.booking_id
        provider = await ctx.providers.open_connection(target, await _owner_zone(uow, tenant))
        try:
            await provider.create_event(
                target.remote_id,
                uid,
                cmd.start,
                cmd.end,
                cmd.summary,
                cmd.description,
                cmd.attendee_email,
            )
        except CredentialsRejected as exc:
            await _mark(ctx, target, msg.ConnectionStatus.EXPIRED, str(exc))
            raise ServiceError(ErrorKind.UPSTREAM, "calendar_expired", str(exc)) from exc
        except (ProviderError, UrlRefused) as exc:
            raise ServiceError(ErrorKind.UPSTREAM, "calendar_unavailable", str(exc)) from exc
        finally:
            await provider.aclose()
        await uow.execute(
            pg_insert(booking_events)
            .values(
                booking_id=cmd.booking_id,
                tenant_id=tenant,
                connection_id=target.id,
                remote_calendar_id=target.remote_id,
                uid=uid,
            )
            .on_conflict_do_update(index_elements=["booking_id"], set_={"deleted_at": None})
        )
        await uow.commit()
    return msg.BookingEventWritten(
        booking_id=cmd.booking_id,
        provider=msg.Provider(target.provider),
        calendar_id=target.remote_id,
        uid=uid,
    )


async def delete_booking_event(
    cmd: msg.DeleteBookingEvent, ctx: Context
) -> msg.BookingEventDeleted:
    """Delete the booking's event; idempotent.

    Without a record of the write (the write's record was lost, e.g. the database went away
    right after the provider wrote), the event is looked for by its UID on the receiving
    calendar: nothing Cortex wrote may outlive its booking. Every delete leaves a tombstone
    (kept even when the provider cannot be reached, for the retry) that refuses any write
    of the booking's event sent before it."""
    tenant = cmd.tenant_id or ""
    async with ctx.uow() as uow:
        await _lock_booking_event(uow, cmd.booking_id)
        await _leave_tombstone(uow, cmd, tenant)
        written = (
            await uow.execute(
                sa.select(
                    booking_events.c.remote_calendar_id,
                    booking_events.c.uid,
                    booking_events.c.deleted_at,
                    connections,
                )
                .join(connections, connections.c.id == booking_events.c.connection_id)
                .where(
                    booking_events.c.booking_id == cmd.booking_id,
                    booking_events.c.tenant_id == tenant,
                )
            )
        ).first()
        if written is not None and written.deleted_at is not None:
            await uow.commit()
            return msg.BookingEventDeleted(booking_id=cmd.booking_id, deleted=False)
        if written is not None:
            connection: Any = written
            calendar_id, uid = written.remote_calendar_id, written.uid
        else:
            connection = await _receiving_calendar(uow, tenant)
            if connection is None:
                await uow.commit()
                return msg.BookingEventDeleted(booking_id=cmd.booking_id, deleted=False)
            calendar_id, uid = connection.remote_id, cmd.booking_id
        provider = await ctx.providers.open_connection(connection, await _owner_zone(uow, tenant))
        try:
            await provider.delete_event(calendar_id, uid)
        except (ProviderError, UrlRefused) as exc:
            await uow.commit()  # the tombstone stays; the record waits for the retry
            raise ServiceError(ErrorKind.UPSTREAM, "calendar_unavailable", str(exc)) from exc
        finally:
            await provider.aclose()
        if written is not None:
            await uow.execute(
                sa.update(booking_events)
                .where(booking_events.c.booking_id == cmd.booking_id)
                .values(deleted_at=sa.func.now())
            )
        await uow.commit()
    return msg.BookingEventDeleted(booking_id=cmd.booking_id, deleted=written is not None)
