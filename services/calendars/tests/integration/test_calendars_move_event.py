"""Moving a booking's event (issue 17's reschedule) against real Radicale, NATS and
PostgreSQL: one event, the same UID, new times, the synced copy moved at once; and free/busy
explained (every event, its calendar, the booking behind each one Cortex wrote)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from calendars_harness import (
    StartCalendars,
    calendar_listing,
    connect_caldav,
    make_calendar,
    put_ics,
)
from icalendar import Calendar

from contracts import calendars as msg
from contracts.rpc import ErrorKind
from cortex_dev.pytest_plugin import CaldavAccount, query
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

pytestmark = pytest.mark.integration

TENANT = "tn_move_event"
DAY = (datetime.now(UTC) + timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


OLD = (at(10), at(10, 30))
NEW = (at(14), at(14, 30))


@pytest.fixture
def rpc(start_calendars: StartCalendars, calendars_rpc: RpcClient) -> RpcClient:
    start_calendars()
    return calendars_rpc


def move(
    booking_id: str,
    span: tuple[datetime, datetime],
    *,
    deadline: datetime | None = None,
    summary: str | None = None,
    tenant: str = TENANT,
) -> msg.MoveBookingEvent:
    return msg.MoveBookingEvent(
        tenant_id=tenant,
        booking_id=booking_id,
        start=span[0],
        end=span[1],
        summary=summary,
        deadline=deadline,
    )


async def write(rpc: RpcClient, booking_id: str, span: tuple[datetime, datetime]) -> None:
    written = await rpc.call(
        msg.WRITE_BOOKING_EVENT,
        msg.WriteBookingEvent(
            tenant_id=TENANT,
            booking_id=booking_id,
            start=span[0],
            end=span[1],
            summary="Intro call",
            description="Booked via Cortex",
            attendee_email="guest@example.org",
        ),
    )
    assert written.uid == booking_id


async def event_on_server(account: CaldavAccount, calendar_url: str, uid: str) -> dict[str, str]:
    """The booking's event as Radicale serves it: its times (UTC ISO), SEQUENCE, texts."""
    async with httpx.AsyncClient(auth=(account.username, account.password)) as client:
        response = await client.get(f"{calendar_url}{uid}.ics")
    assert response.status_code == 200, response.text
    [event] = Calendar.from_ical(response.text).walk("VEVENT")
    return {
        "uid": str(event["UID"]),
        "start": event["DTSTART"].dt.astimezone(UTC).isoformat(),
        "end": event["DTEND"].dt.astimezone(UTC).isoformat(),
        "sequence": str(event.get("SEQUENCE", 0)),
        "summary": str(event["SUMMARY"]),
        "description": str(event.get("DESCRIPTION", "")),
        "attendee": str(event.get("ATTENDEE", "")),
    }


def iso(span: tuple[datetime, datetime]) -> tuple[str, str]:
    return span[0].isoformat(), span[1].isoformat()


async def stored(db: str, uid: str) -> list[tuple[str, datetime, datetime]]:
    rows = await query(
        db, "SELECT object_key, start_at, end_at FROM events WHERE uid = $1 ORDER BY 2", uid
    )
    return [(r["object_key"], r["start_at"], r["end_at"]) for r in rows]


async def synced_announcements(db: str) -> int:
    rows = await query(db, "SELECT 1 FROM outbox WHERE subject = $1", msg.CALENDAR_SYNCED.subject)
    return len(rows)


async def busy(rpc: RpcClient, *, live: bool = False) -> list[tuple[datetime, datetime]]:
    answer = await rpc.call(
        msg.GET_FREE_BUSY, msg.GetFreeBusy(tenant_id=TENANT, start=at(0), end=at(24), live=live)
    )
    return [(b.start, b.end) for b in answer.busy]


async def test_a_move_is_in_place_and_the_synced_copy_moves_with_it(
    rpc: RpcClient, caldav_account: CaldavAccount, calendars_db: str
) -> None:
    calendar_url = await make_calendar(caldav_account)
    await connect_caldav(rpc, TENANT, caldav_account)
    await write(rpc, "bk_move", OLD)
    assert await busy(rpc, live=True) == [OLD]  # the synced copy, at the old times
    [(key, *_)] = await stored(calendars_db, "bk_move")
    announced = await synced_announcements(calendars_db)

    moved = await rpc.call(msg.MOVE_BOOKING_EVENT, move("bk_move", NEW))
    assert (moved.booking_id, moved.provider, moved.uid) == (
        "bk_move",
        msg.Provider.CALDAV,
        "bk_move",
    )
    assert moved.calendar_id == calendar_url

    # one event on the server: the same resource and UID, the new times, SEQUENCE bumped,
    # the rest kept
    assert (await calendar_listing(caldav_account, calendar_url)).count("bk_move") == 1
    event = await event_on_server(caldav_account, calendar_url, "bk_move")
    assert (event["uid"], (event["start"], event["end"]), event["sequence"]) == (
        "bk_move",
        iso(NEW),
        "1",
    )
    assert (event["summary"], event["description"]) == ("Intro call", "Booked via Cortex")
    assert event["attendee"] == "mailto:guest@example.org"

    # the synced copy moved at once (no sync in between), under the key a sync uses
    assert await stored(calendars_db, "bk_move") == [(key, *NEW)]
    assert await busy(rpc) == [NEW]
    assert await synced_announcements(calendars_db) == announced + 1  # caches: stale
    # and a sync of the provider agrees with it: still one copy, at the new times
    assert await busy(rpc, live=True) == [NEW]
    assert await stored(calendars_db, "bk_move") == [(key, *NEW)]

    # idempotent: moving it where it is writes nothing (no SEQUENCE bump), answers the same
    again = await rpc.call(msg.MOVE_BOOKING_EVENT, move("bk_move", NEW))
    assert (again.provider, again.calendar_id, again.uid) == (
        moved.provider,
        moved.calendar_id,
        moved.uid,
    )
    event = await event_on_server(caldav_account, calendar_url, "bk_move")
    assert ((event["start"], event["end"]), event["sequence"]) == (iso(NEW), "1")

    # a new summary replaces the event's; the compensation is a move back
    await rpc.call(msg.MOVE_BOOKING_EVENT, move("bk_move", OLD, summary="Intro call (moved)"))
    event = await event_on_server(caldav_account, calendar_url, "bk_move")
    assert (event["summary"], (event["start"], event["end"]), event["sequence"]) == (
        "Intro call (moved)",
        iso(OLD),
        "2",
    )
    assert await stored(calendars_db, "bk_move") == [(key, *OLD)]
    assert await busy(rpc) == [OLD]

    # an end before the start is refused
    with pytest.raises(ServiceError) as invalid:
        await rpc.call(msg.MOVE_BOOKING_EVENT, move("bk_move", (NEW[1], NEW[0])))
    assert (invalid.value.kind, invalid.value.code) == (ErrorKind.INVALID, "invalid_range")


async def test_a_late_move_changes_nothing(
    rpc: RpcClient, caldav_account: CaldavAccount, calendars_db: str
) -> None:
    calendar_url = await make_calendar(caldav_account)
    await connect_caldav(rpc, TENANT, caldav_account)
    await write(rpc, "bk_late_move", OLD)

    # past its deadline: refused, nothing moved
    with pytest.raises(ServiceError) as late:
        await rpc.call(
            msg.MOVE_BOOKING_EVENT,
            move("bk_late_move", NEW, deadline=datetime.now(UTC) - timedelta(seconds=1)),
        )
    assert (late.value.kind, late.value.code) == (ErrorKind.UNAVAILABLE, "deadline_passed")

    # in time, but waiting for the booking's lock (held here, as a write or delete under
    # way would) past its deadline: refused too
    conn = await asyncpg.connect(calendars_db.replace("+asyncpg", ""))
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext('booking_event:bk_late_move'))")
        waiting = asyncio.create_task(
            rpc.call(
                msg.MOVE_BOOKING_EVENT,
                move("bk_late_move", NEW, deadline=datetime.now(UTC) + timedelta(seconds=1)),
            )
        )
        await asyncio.sleep(1.5)
        assert not waiting.done()
        await conn.execute("SELECT pg_advisory_unlock(hashtext('booking_event:bk_late_move'))")
        with pytest.raises(ServiceError) as waited:
            await waiting
        assert waited.value.code == "deadline_passed"
    finally:
        await conn.close()
    event = await event_on_server(caldav_account, calendar_url, "bk_late_move")
    assert ((event["start"], event["end"]), event["sequence"]) == (iso(OLD), "0")

    # a move sent before a delete of the booking's event is refused, and re-creates nothing;
    # so is one sent after it (there is nothing to move)
    sent_before = move("bk_late_move", NEW)
    await asyncio.sleep(0.01)
    deleted = await rpc.call(
        msg.DELETE_BOOKING_EVENT,
        msg.DeleteBookingEvent(tenant_id=TENANT, booking_id="bk_late_move"),
    )
    assert deleted.deleted
    for late_move in (sent_before, move("bk_late_move", NEW)):
        with pytest.raises(ServiceError) as refused:
            await rpc.call(msg.MOVE_BOOKING_EVENT, late_move)
        assert (refused.value.kind, refused.value.code) == (
            ErrorKind.CONFLICT,
            "booking_event_deleted",
        )
    assert "bk_late_move" not in await calendar_listing(caldav_account, calendar_url)


async def test_without_a_record_the_event_is_found_by_its_uid(
    rpc: RpcClient, caldav_account: CaldavAccount, calendars_db: str
) -> None:
    calendar_url = await make_calendar(caldav_account)
    await connect_caldav(rpc, TENANT, caldav_account)

    # the write's record was lost (the database went away right after the provider wrote)
    await write(rpc, "bk_lost_move", OLD)
    await query(calendars_db, "DELETE FROM booking_events WHERE booking_id = 'bk_lost_move'")
    moved = await rpc.call(msg.MOVE_BOOKING_EVENT, move("bk_lost_move", NEW))
    assert (moved.provider, moved.calendar_id, moved.uid) == (
        msg.Provider.CALDAV,
        calendar_url,
        "bk_lost_move",
    )
    event = await event_on_server(caldav_account, calendar_url, "bk_lost_move")
    assert (event["start"], event["end"]) == iso(NEW)
    assert (await calendar_listing(caldav_account, calendar_url)).count("bk_lost_move") == 1
    [record] = await query(
        calendars_db, "SELECT * FROM booking_events WHERE booking_id = 'bk_lost_move'"
    )
    assert (record["tenant_id"], record["uid"], record["deleted_at"]) == (
        TENANT,
        "bk_lost_move",
        None,
    )
    assert await busy(rpc) == [NEW]

    # no event with the UID anywhere: the booking has no event, answered as the write
    # answers an owner without a calendar; nothing is created
    nothing = await rpc.call(msg.MOVE_BOOKING_EVENT, move("bk_never_written", NEW))
    assert (nothing.provider, nothing.calendar_id, nothing.uid) == (None, None, None)
    assert "bk_never_written" not in await calendar_listing(caldav_account, calendar_url)
    assert (
        await query(
            calendars_db, "SELECT * FROM booking_events WHERE booking_id = 'bk_never_written'"
        )
        == []
    )

    # an owner with no calendar at all
    none = await rpc.call(msg.MOVE_BOOKING_EVENT, move("bk_x", NEW, tenant="tn_no_calendar"))
    assert (none.booking_id, none.provider, none.calendar_id, none.uid) == (
        "bk_x",
        None,
        None,
        None,
    )


def every_ten_minutes(uid: str, first: datetime, count: int) -> str:
    """``count`` 5-minute occurrences, ten minutes apart."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{first:%Y%m%dT%H%M%SZ}\r\nDTEND:{first + timedelta(minutes=5):%Y%m%dT%H%M%SZ}\r\n"
        f"RRULE:FREQ=MINUTELY;INTERVAL=10;COUNT={count}\r\nSUMMARY:Focus\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def test_free_busy_explained_lists_every_event_with_its_calendar_and_booking(
    rpc: RpcClient, caldav_account: CaldavAccount
) -> None:
    calendar_url = await make_calendar(caldav_account)
    await put_ics(caldav_account, calendar_url, "focus", every_ten_minutes("focus-1", at(0), 60))
    connected = await connect_caldav(rpc, TENANT, caldav_account)
    [calendar] = connected.connection.calendars
    await write(rpc, "bk_explained", (at(12), at(12, 30)))
    # an event of the owner's own whose UID looks like a booking's, but no booking wrote it
    await put_ics(
        caldav_account,
        calendar_url,
        "lookalike",
        every_ten_minutes("bk_not_ours", at(13), 1),
    )

    day = {"tenant_id": TENANT, "start": at(0), "end": at(24), "live": True}
    plain = await rpc.call(msg.GET_FREE_BUSY, msg.GetFreeBusy(**day))
    explained = await rpc.call(msg.GET_FREE_BUSY, msg.GetFreeBusy(**day, explain=True))

    assert plain.busy == explained.busy and len(explained.busy) == 62
    assert len(plain.events) == 50  # the first 50, by start
    assert plain.events == explained.events[:50]
    assert len(explained.events) == 62  # every one
    assert [e.start for e in explained.events] == sorted(e.start for e in explained.events)
    assert {(e.calendar_id, e.calendar_name) for e in explained.events} == {(calendar.id, "work")}
    booked = [e for e in explained.events if e.booking_id is not None]
    assert [(e.booking_id, e.start, e.end, e.summary) for e in booked] == [
        ("bk_explained", at(12), at(12, 30), "Intro call")
    ]
    assert {e.summary for e in explained.events if e.booking_id is None} == {"Focus"}

    # after a move, the explained event is the booking's at its new times
    await rpc.call(msg.MOVE_BOOKING_EVENT, move("bk_explained", (at(20), at(20, 30))))
    after = await rpc.call(
        msg.GET_FREE_BUSY, msg.GetFreeBusy(**{**day, "live": False}, explain=True)
    )
    assert [(e.booking_id, e.start) for e in after.events if e.booking_id] == [
        ("bk_explained", at(20))
    ]
    assert not [e for e in after.events if e.start == at(12)]
