"""The calendars service as a process, connected to Google / Outlook through the real OAuth
redirect flow against the devstack fakes, over NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import nats
import nats.js.errors
import pytest

from contracts import calendars as msg
from contracts import subjects
from cortex_dev.fakes import (
    GOOGLE_API_PREFIX,
    GRAPH_API_PREFIX,
    FakeGoogle,
    FakeGraph,
    run_in_thread,
)
from cortex_dev.pytest_plugin import Processes
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

pytestmark = pytest.mark.integration

TENANT = "tn_oauth_test"
EMAIL = "ada@example.com"

TOMORROW = (datetime.now(UTC) + timedelta(days=1)).replace(
    hour=0, minute=0, second=0, microsecond=0
)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` days after today (1: tomorrow), at ``hour:minute`` UTC."""
    return TOMORROW + timedelta(days=day - 1, hours=hour, minutes=minute)


def day(offset: int) -> date:
    return (TOMORROW + timedelta(days=offset - 1)).date()


# Free/busy is asked over tomorrow and the day after (the all-day event's day).
RANGE = (at(1, 0), at(3, 0))
SEEDED_BUSY = [
    (at(1, 9), at(1, 9, 30)),  # the recurring series' first occurrence
    (at(1, 14), at(1, 14, 30)),  # the normal busy event
    (at(1, 16), at(1, 17)),  # on the second calendar
    (at(2, 0), at(3, 0)),  # the all-day event (swallowing the series' second occurrence)
]


@dataclass
class Seeded:
    """A provider fake with one user, two calendars and some events, served on a port."""

    provider: str
    fake: FakeGoogle | FakeGraph
    base: str
    booking_calendar: str  # the remote id of the calendar that receives bookings
    calendar_names: dict[str, bool]  # name -> receives bookings
    busy_event: str  # the id of the 14:00 event

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:9/api/v1/calendars/{self.provider}/callback"

    def env(self) -> dict[str, str]:
        oauth = self.fake.oauth
        if self.provider == "google":
            return {
                "CORTEX_CALENDARS_GOOGLE_CLIENT_ID": oauth.client_id,
                "CORTEX_CALENDARS_GOOGLE_CLIENT_SECRET": oauth.client_secret,
                "CORTEX_CALENDARS_GOOGLE_AUTH_URL": f"{self.base}/authorize",
                "CORTEX_CALENDARS_GOOGLE_TOKEN_URL": f"{self.base}/token",
                "CORTEX_CALENDARS_GOOGLE_API_URL": f"{self.base}{GOOGLE_API_PREFIX}",
            }
        return {
            "CORTEX_CALENDARS_MICROSOFT_CLIENT_ID": oauth.client_id,
            "CORTEX_CALENDARS_MICROSOFT_CLIENT_SECRET": oauth.client_secret,
            "CORTEX_CALENDARS_MICROSOFT_AUTH_URL": f"{self.base}/authorize",
            "CORTEX_CALENDARS_MICROSOFT_TOKEN_URL": f"{self.base}/token",
            "CORTEX_CALENDARS_GRAPH_API_URL": f"{self.base}{GRAPH_API_PREFIX}",
        }

    def add_busy(self, start: datetime, end: datetime) -> str:
        if isinstance(self.fake, FakeGoogle):
            return self.fake.add_event(self.booking_calendar, start, end, summary="New")
        return self.fake.add_event(self.booking_calendar, start, end, subject="New")

    def remove(self, event_id: str) -> None:
        if isinstance(self.fake, FakeGoogle):
            self.fake.cancel_event(self.booking_calendar, event_id)
        else:
            self.fake.remove_event(self.booking_calendar, event_id)

    def booking_events(self, booking_id: str) -> list[dict[str, Any]]:
        """The live events on the receiving calendar that carry this booking's UID."""
        found = self.fake.events(self.booking_calendar)
        if isinstance(self.fake, FakeGoogle):
            return [
                e
                for e in found
                if e.get("extendedProperties", {}).get("private", {}).get("cortexUid") == booking_id
            ]
        return [
            e
            for e in found
            if any(p.get("value") == booking_id for p in e.get("singleValueExtendedProperties", []))
        ]

    def issued_tokens(self) -> set[str]:
        """Every access and refresh token the fake ever issued."""
        oauth = self.fake.oauth
        with oauth.lock:
            return set(oauth._access) | set(oauth._refresh)

    def refuse_everything(self) -> None:
        """The access tokens expire and the refresh tokens are revoked (access withdrawn)."""
        oauth = self.fake.oauth
        with oauth.lock:
            for token in list(oauth._access):
                oauth.expire_access_token(token)
            for token in oauth.refresh_tokens_of(EMAIL):
                oauth.revoke_refresh_token(token)


def seed_google() -> tuple[FakeGoogle, dict[str, Any]]:
    fake = FakeGoogle()
    primary, team = EMAIL, "team@group.calendar.google.com"
    fake.add_calendar(EMAIL, primary, "Ada Lovelace", primary=True)
    fake.add_calendar(EMAIL, team, "Team", access_role="reader")
    fake.add_event(primary, day(2), day(3), summary="Offsite")
    fake.add_event(primary, at(1, 10), at(1, 11), summary="Called off", status="cancelled")
    fake.add_event(primary, at(1, 12), at(1, 13), summary="Lunch", transparent=True)
    busy = fake.add_event(primary, at(1, 14), at(1, 14, 30), summary="Meeting")
    fake.add_event(team, at(1, 16), at(1, 17), summary="Team sync")
    fake.add_recurring(primary, [(at(d, 9), at(d, 9, 30)) for d in (1, 2, 3)], summary="Standup")
    return fake, {
        "booking_calendar": primary,
        "calendar_names": {"Ada Lovelace": True, "Team": False},
        "busy_event": busy,
    }


def seed_graph() -> tuple[FakeGraph, dict[str, Any]]:
    fake = FakeGraph()
    primary, team = "AAMkCal1", "AAMkTeam"
    fake.add_user(EMAIL, "ada@contoso.onmicrosoft.com")
    fake.add_calendar(EMAIL, primary, "Calendar", default=True)
    fake.add_calendar(EMAIL, team, "Team")
    fake.add_event(primary, day(2), day(3), subject="Offsite", is_all_day=True)
    fake.add_event(primary, at(1, 10), at(1, 11), subject="Called off", is_cancelled=True)
    fake.add_event(primary, at(1, 12), at(1, 13), subject="Lunch", show_as="free")
    busy = fake.add_event(primary, at(1, 14), at(1, 14, 30), subject="Meeting")
    fake.add_event(team, at(1, 16), at(1, 17), subject="Team sync")
    for d in (1, 2, 3):
        fake.add_event(
            primary,
            at(d, 9),
            at(d, 9, 30),
            subject="Standup",
            event_type="occurrence",
            series_master_id="AAMkSeries",
            originalStart=at(d, 9).isoformat().replace("+00:00", "Z"),
        )
    return fake, {
        "booking_calendar": primary,
        "calendar_names": {"Calendar": True, "Team": False},
        "busy_event": busy,
    }


@pytest.fixture(params=["google", "outlook"])
def seeded(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    fake, info = seed_google() if request.param == "google" else seed_graph()
    base, stop = run_in_thread(fake.app)
    try:
        yield Seeded(request.param, fake, base, **info)
    finally:
        stop()


@pytest.fixture
def calendars_db(service_database: Callable[[str], str]) -> str:
    return service_database("calendars")


@pytest.fixture
async def rpc(
    seeded: Seeded, nats_url: str, calendars_db: str, processes: Processes
) -> AsyncIterator[RpcClient]:
    """The service, started last so that it stops before NATS and the fake go away."""
    processes.start(
        "calendars",
        [sys.executable, "-m", "calendars"],
        {
            "CORTEX_ENV": "test",
            "CORTEX_NATS_URL": nats_url,
            "CORTEX_CALENDARS_DATABASE_URL": calendars_db,
            "CORTEX_CALENDARS_HTTP_TIMEOUT_SECONDS": "5",
            "CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS": "3600",
            **seeded.env(),
        },
    )
    processes.wait_for_log("calendars", "service ready")
    broker = build_broker(nats_url, "test")
    async with broker:
        await broker.connect()
        yield RpcClient(broker, timeout=30)


async def query(database_url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql)
        return rows
    finally:
        await conn.close()


async def sync_tokens(database_url: str) -> dict[str, str | None]:
    rows = await query(database_url, "SELECT name, sync_token FROM calendars")
    return {r["name"]: r["sync_token"] for r in rows}


async def connect(rpc: RpcClient, seeded: Seeded) -> msg.ConnectionInfo:
    """The whole redirect flow: start, the browser at the provider, the callback."""
    started = await rpc.call(
        msg.START_OAUTH,
        msg.StartOAuth(
            tenant_id=TENANT, provider=seeded.provider, redirect_uri=seeded.redirect_uri
        ),
    )
    assert started.authorization_url.startswith(f"{seeded.base}/authorize?")
    params = parse_qs(urlsplit(started.authorization_url).query)
    assert params["response_type"] == ["code"]
    assert params["client_id"] == [seeded.fake.oauth.client_id]
    assert params["redirect_uri"] == [seeded.redirect_uri]
    assert params["state"] == [started.state] and len(started.state) >= 32
    assert params["code_challenge_method"] == ["S256"]
    assert len(params["code_challenge"][0]) == 43
    if seeded.provider == "google":
        assert params["access_type"] == ["offline"]
    else:
        assert "access_type" not in params
        assert "offline_access" in params["scope"][0].split()

    async with httpx.AsyncClient(timeout=5, follow_redirects=False) as browser:
        response = await browser.get(started.authorization_url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(seeded.redirect_uri + "?")
    callback = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert callback["state"] == started.state and callback["code"]
    assert "error" not in callback

    completed = await rpc.call(
        msg.COMPLETE_OAUTH,
        msg.CompleteOAuth(
            tenant_id=TENANT,
            provider=seeded.provider,
            code=callback["code"],
            state=callback["state"],
        ),
    )
    info = completed.connection
    assert info.provider is msg.Provider(seeded.provider)
    assert info.status is msg.ConnectionStatus.OK and info.status_reason is None
    assert info.email == EMAIL
    assert info.last_synced_at is not None
    assert info.calendar_count == 2
    assert {c.name: c.receives_bookings for c in info.calendars} == seeded.calendar_names
    assert all(c.contributes_to_availability for c in info.calendars)

    # The state is single use, and an unknown state is refused the same way.
    for state in (callback["state"], "not-a-state-we-issued"):
        with pytest.raises(ServiceError) as refused:
            await rpc.call(
                msg.COMPLETE_OAUTH,
                msg.CompleteOAuth(
                    tenant_id=TENANT, provider=seeded.provider, code=callback["code"], state=state
                ),
            )
        assert refused.value.code == "invalid_state"
    return info


async def free_busy(
    rpc: RpcClient, *, live: bool = False, span: tuple[datetime, datetime] = RANGE
) -> msg.FreeBusy:
    return await rpc.call(
        msg.GET_FREE_BUSY,
        msg.GetFreeBusy(tenant_id=TENANT, start=span[0], end=span[1], live=live),
    )


def busy_of(answer: msg.FreeBusy) -> list[tuple[datetime, datetime]]:
    return [(b.start, b.end) for b in answer.busy]


async def test_connect_free_busy_bookings_and_disconnect(
    rpc: RpcClient, seeded: Seeded, calendars_db: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        await rpc.call(
            msg.START_OAUTH,
            msg.StartOAuth(tenant_id=TENANT, provider="caldav", redirect_uri=seeded.redirect_uri),
        )
    assert refused.value.code == "invalid_provider"

    info = await connect(rpc, seeded)
    assert await query(calendars_db, "SELECT * FROM oauth_states") == []

    # Free/busy from the stored sync: cancelled and free events do not block.
    answer = await free_busy(rpc)
    assert busy_of(answer) == SEEDED_BUSY
    assert answer.unknown == []
    assert len(answer.sources) == 2 and all(s.known for s in answer.sources)
    assert {s.connection_id for s in answer.sources} == {info.id}

    # A live check reads what changed since (sync token / delta link) ...
    tokens_before = await sync_tokens(calendars_db)
    assert len(tokens_before) == 2 and all(tokens_before.values())
    new_event = seeded.add_busy(at(1, 11), at(1, 11, 30))
    answer = await free_busy(rpc, live=True)
    assert busy_of(answer) == sorted([*SEEDED_BUSY, (at(1, 11), at(1, 11, 30))])
    tokens_after = await sync_tokens(calendars_db)
    changed = {name for name, token in tokens_after.items() if token != tokens_before[name]}
    assert changed >= {next(n for n, books in seeded.calendar_names.items() if books)}
    # ... removals included.
    seeded.remove(seeded.busy_event)
    seeded.remove(new_event)
    answer = await free_busy(rpc, live=True)
    assert busy_of(answer) == [b for b in SEEDED_BUSY if b != (at(1, 14), at(1, 14, 30))]
    assert all(s.known for s in answer.sources)

    # The booking's event, written twice, is one event on the receiving calendar.
    slot = (at(1, 18), at(1, 18, 30))
    for _ in range(2):
        written = await rpc.call(
            msg.WRITE_BOOKING_EVENT,
            msg.WriteBookingEvent(
                tenant_id=TENANT,
                booking_id="bk_oauth_1",
                start=slot[0],
                end=slot[1],
                summary="Intro call",
                attendee_email="bob@example.com",
            ),
        )
        assert written.provider is msg.Provider(seeded.provider)
        assert written.calendar_id == seeded.booking_calendar
        assert written.uid == "bk_oauth_1"
    assert len(seeded.booking_events("bk_oauth_1")) == 1
    answer = await free_busy(rpc, live=True, span=(at(1, 17), at(1, 19)))
    assert busy_of(answer) == [slot]

    deleted = await rpc.call(
        msg.DELETE_BOOKING_EVENT, msg.DeleteBookingEvent(tenant_id=TENANT, booking_id="bk_oauth_1")
    )
    assert deleted.deleted
    assert seeded.booking_events("bk_oauth_1") == []
    again = await rpc.call(
        msg.DELETE_BOOKING_EVENT, msg.DeleteBookingEvent(tenant_id=TENANT, booking_id="bk_oauth_1")
    )
    assert again.booking_id == "bk_oauth_1" and not again.deleted
    answer = await free_busy(rpc, live=True, span=(at(1, 17), at(1, 19)))
    assert busy_of(answer) == []

    # Secrets at rest: no token the provider issued is stored in clear.
    rows = await query(calendars_db, "SELECT * FROM connections")
    assert len(rows) == 1
    dump = "\n".join(
        v.decode("latin-1") if isinstance(v, bytes) else str(v)
        for row in rows
        for v in row.values()
    )
    assert EMAIL in dump
    tokens = seeded.issued_tokens()
    assert tokens and not [t for t in tokens if t in dump]
    assert rows[0]["secret"] and rows[0]["access_token"]

    # Disconnecting removes the connection, its calendars and their events.
    assert (await query(calendars_db, "SELECT count(*) AS n FROM events"))[0]["n"] > 0
    gone = await rpc.call(
        msg.DISCONNECT, msg.Disconnect(tenant_id=TENANT, provider=seeded.provider)
    )
    assert gone.provider is msg.Provider(seeded.provider)
    for table in ("connections", "calendars", "events"):
        assert (await query(calendars_db, f"SELECT count(*) AS n FROM {table}"))[0]["n"] == 0
    listed = await rpc.call(msg.LIST_CONNECTIONS, msg.ListConnections(tenant_id=TENANT))
    assert listed.connections == []
    for provider, code in ((seeded.provider, "not_connected"), ("yahoo", "invalid_provider")):
        with pytest.raises(ServiceError) as failed:
            await rpc.call(msg.DISCONNECT, msg.Disconnect(tenant_id=TENANT, provider=provider))
        assert failed.value.code == code


async def last_event(
    nats_url: str, subject: str, timeout: float = 10.0
) -> tuple[int, dict[str, Any]]:
    """The last message on ``subject`` in the calendars' event stream, waiting for the
    outbox to publish one: ``(stream sequence, body)``."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = await js.get_last_msg(subjects.stream_name(subjects.CALENDARS), subject)
            except nats.js.errors.NotFoundError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
                continue
            assert raw.data is not None and raw.seq is not None
            return raw.seq, json.loads(raw.data)
    finally:
        await nc.close()


async def test_refused_refresh_expires_the_connection(
    rpc: RpcClient, seeded: Seeded, nats_url: str
) -> None:
    info = await connect(rpc, seeded)
    seeded.refuse_everything()

    synced = await rpc.call(msg.SYNC_NOW, msg.SyncNow(tenant_id=TENANT))
    assert [c.status for c in synced.connections] == [msg.ConnectionStatus.EXPIRED]
    listed = await rpc.call(msg.LIST_CONNECTIONS, msg.ListConnections(tenant_id=TENANT))
    [connection] = listed.connections
    assert connection.id == info.id and connection.status is msg.ConnectionStatus.EXPIRED
    assert connection.status_reason
    assert not [t for t in seeded.issued_tokens() if t in connection.status_reason]

    expired_seq, body = await last_event(nats_url, msg.CALENDAR_EXPIRED.subject)
    expired = msg.CalendarExpired.model_validate(body)
    assert expired.connection_id == info.id
    assert expired.provider is msg.Provider(seeded.provider)
    assert expired.tenant_id == TENANT
    synced_seq, _ = await last_event(nats_url, msg.CALENDAR_SYNCED.subject)  # the connect's

    for live in (False, True):
        answer = await free_busy(rpc, live=live)
        assert len(answer.sources) == 2
        for source in answer.sources:
            assert not source.known and source.status is msg.ConnectionStatus.EXPIRED
            assert source.reason
        assert [(u.start, u.end) for u in answer.unknown] == [RANGE]

    # Writing a booking's event now fails as expired, not as a crash.
    with pytest.raises(ServiceError) as failed:
        await rpc.call(
            msg.WRITE_BOOKING_EVENT,
            msg.WriteBookingEvent(
                tenant_id=TENANT,
                booking_id="bk_oauth_2",
                start=at(1, 18),
                end=at(1, 18, 30),
                summary="Intro call",
            ),
        )
    assert failed.value.code == "calendar_expired"
    assert seeded.booking_events("bk_oauth_2") == []

    # Failing again while expired announces nothing: neither expired again nor "synced".
    await rpc.call(msg.DISCONNECT, msg.Disconnect(tenant_id=TENANT, provider=seeded.provider))
    await last_event(nats_url, msg.CALENDAR_DISCONNECTED.subject)  # the outbox caught up
    assert (await last_event(nats_url, msg.CALENDAR_EXPIRED.subject))[0] == expired_seq
    assert (await last_event(nats_url, msg.CALENDAR_SYNCED.subject))[0] == synced_seq


async def test_a_booking_event_moves_in_place_and_free_busy_names_it(
    rpc: RpcClient, seeded: Seeded, calendars_db: str
) -> None:
    info = await connect(rpc, seeded)
    names = {c.id: c.name for c in info.calendars}
    old, new = (at(1, 18), at(1, 18, 30)), (at(1, 20), at(1, 20, 30))
    await rpc.call(
        msg.WRITE_BOOKING_EVENT,
        msg.WriteBookingEvent(
            tenant_id=TENANT,
            booking_id="bk_oauth_move",
            start=old[0],
            end=old[1],
            summary="Intro call",
            attendee_email="bob@example.com",
        ),
    )
    evening = (at(1, 17), at(1, 21))
    assert busy_of(await free_busy(rpc, live=True, span=evening)) == [old]
    [before] = seeded.booking_events("bk_oauth_move")

    moved = await rpc.call(
        msg.MOVE_BOOKING_EVENT,
        msg.MoveBookingEvent(
            tenant_id=TENANT, booking_id="bk_oauth_move", start=new[0], end=new[1]
        ),
    )
    assert (moved.provider, moved.calendar_id, moved.uid) == (
        msg.Provider(seeded.provider),
        seeded.booking_calendar,
        "bk_oauth_move",
    )
    [after] = seeded.booking_events("bk_oauth_move")  # the same event, moved
    assert after["id"] == before["id"]
    assert after["start"]["dateTime"].startswith(new[0].strftime("%Y-%m-%dT%H:%M:%S"))
    assert after.get("attendees") == before.get("attendees")
    # the synced copy moved with it, before any sync; a sync agrees
    assert busy_of(await free_busy(rpc, span=evening)) == [new]
    assert busy_of(await free_busy(rpc, live=True, span=evening)) == [new]

    # explained: every event of the range with its calendar; the booking's named
    explained = await rpc.call(
        msg.GET_FREE_BUSY,
        msg.GetFreeBusy(tenant_id=TENANT, start=RANGE[0], end=RANGE[1], explain=True),
    )
    assert [(e.start, e.end) for e in explained.events] == sorted(
        [*((e.start, e.end) for e in explained.events if e.booking_id is None), new]
    )
    assert [e.booking_id for e in explained.events if e.booking_id] == ["bk_oauth_move"]
    assert all(names[e.calendar_id] == e.calendar_name for e in explained.events)
    assert {e.summary: e.calendar_name for e in explained.events}["Team sync"] == "Team"
    assert len(explained.events) == len(SEEDED_BUSY) + 2  # the all-day one hides a standup

    # the record lost: the event is found by its UID on the receiving calendar and moved
    await query(calendars_db, "DELETE FROM booking_events WHERE booking_id = 'bk_oauth_move'")
    again = await rpc.call(
        msg.MOVE_BOOKING_EVENT,
        msg.MoveBookingEvent(
            tenant_id=TENANT, booking_id="bk_oauth_move", start=old[0], end=old[1]
        ),
    )
    assert again.uid == "bk_oauth_move"
    [back] = seeded.booking_events("bk_oauth_move")
    assert back["id"] == before["id"]
    assert busy_of(await free_busy(rpc, span=evening)) == [old]
    named = await rpc.call(
        msg.GET_FREE_BUSY,
        msg.GetFreeBusy(tenant_id=TENANT, start=evening[0], end=evening[1], explain=True),
    )
    assert [(e.booking_id, e.start) for e in named.events] == [("bk_oauth_move", old[0])]

    # deleted, there is nothing to move
    await rpc.call(
        msg.DELETE_BOOKING_EVENT,
        msg.DeleteBookingEvent(tenant_id=TENANT, booking_id="bk_oauth_move"),
    )
    with pytest.raises(ServiceError) as gone:
        await rpc.call(
            msg.MOVE_BOOKING_EVENT,
            msg.MoveBookingEvent(
                tenant_id=TENANT, booking_id="bk_oauth_move", start=new[0], end=new[1]
            ),
        )
    assert gone.value.code == "booking_event_deleted"
    assert seeded.booking_events("bk_oauth_move") == []
