"""A booking event's write that arrives late (after the saga gave up and deleted it, or past
its deadline) creates nothing on the provider."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from calendars_harness import StartCalendars, calendar_listing, connect_caldav, make_calendar

from contracts import calendars as msg
from contracts.rpc import ErrorKind
from cortex_dev.pytest_plugin import CaldavAccount, query
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

pytestmark = pytest.mark.integration

TENANT = "tn_late_writes"
START = (datetime.now(UTC) + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)


def write(booking_id: str, deadline: datetime | None = None) -> msg.WriteBookingEvent:
    return msg.WriteBookingEvent(
        tenant_id=TENANT,
        booking_id=booking_id,
        start=START,
        end=START + timedelta(minutes=30),
        summary="Intro call",
        attendee_email="guest@example.org",
        deadline=deadline,
    )


async def connect(rpc: RpcClient, account: CaldavAccount) -> str:
    calendar_url = await make_calendar(account)
    await connect_caldav(rpc, TENANT, account)
    return calendar_url


async def test_a_write_sent_before_the_compensating_delete_is_refused(
    start_calendars: StartCalendars,
    calendars_rpc: RpcClient,
    caldav_account: CaldavAccount,
    calendars_db: str,
) -> None:
    start_calendars()
    calendar_url = await connect(calendars_rpc, caldav_account)

    # the saga sends the write, gives up waiting and compensates; the write, still queued,
    # arrives after the delete, which found nothing
    late = write("bk_late")
    await asyncio.sleep(0.01)
    deleted = await calendars_rpc.call(
        msg.DELETE_BOOKING_EVENT, msg.DeleteBookingEvent(tenant_id=TENANT, booking_id="bk_late")
    )
    assert not deleted.deleted
    with pytest.raises(ServiceError) as refused:
        await calendars_rpc.call(msg.WRITE_BOOKING_EVENT, late)
    assert (refused.value.kind, refused.value.code) == (ErrorKind.CONFLICT, "booking_event_deleted")
    assert "bk_late" not in await calendar_listing(caldav_account, calendar_url)
    assert await query(calendars_db, "SELECT * FROM booking_events") == []
    [tomb] = await query(calendars_db, "SELECT * FROM booking_tombstones")
    assert (tomb["booking_id"], tomb["tenant_id"]) == ("bk_late", TENANT)

    # the same after a delete of a written event: a retry of the write sent before it
    first = write("bk_ended")
    await calendars_rpc.call(msg.WRITE_BOOKING_EVENT, first)
    assert "bk_ended" in await calendar_listing(caldav_account, calendar_url)
    await calendars_rpc.call(
        msg.DELETE_BOOKING_EVENT, msg.DeleteBookingEvent(tenant_id=TENANT, booking_id="bk_ended")
    )
    with pytest.raises(ServiceError) as again:
        await calendars_rpc.call(msg.WRITE_BOOKING_EVENT, first)
    assert again.value.code == "booking_event_deleted"
    assert "bk_ended" not in await calendar_listing(caldav_account, calendar_url)

    # a write the saga sends after the delete is a new decision: it is written
    written = await calendars_rpc.call(msg.WRITE_BOOKING_EVENT, write("bk_late"))
    assert written.uid == "bk_late"
    assert "bk_late" in await calendar_listing(caldav_account, calendar_url)


async def test_work_past_its_deadline_is_refused(
    start_calendars: StartCalendars,
    calendars_rpc: RpcClient,
    caldav_account: CaldavAccount,
    calendars_db: str,
) -> None:
    start_calendars()
    calendar_url = await connect(calendars_rpc, caldav_account)
    now = datetime.now(UTC)

    with pytest.raises(ServiceError) as late:
        await calendars_rpc.call(
            msg.WRITE_BOOKING_EVENT, write("bk_past", now - timedelta(seconds=1))
        )
    assert (late.value.kind, late.value.code) == (ErrorKind.UNAVAILABLE, "deadline_passed")
    with pytest.raises(ServiceError) as late_check:
        await calendars_rpc.call(
            msg.GET_FREE_BUSY,
            msg.GetFreeBusy(
                tenant_id=TENANT, start=now, end=now + timedelta(hours=1), live=True, deadline=now
            ),
        )
    assert late_check.value.code == "deadline_passed"

    # a write that arrives in time but waits for the booking's lock (held here, as a
    # compensating delete would) past its deadline does nothing either
    conn = await asyncpg.connect(calendars_db.replace("+asyncpg", ""))
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext('booking_event:bk_waited'))")
        waiting = asyncio.create_task(
            calendars_rpc.call(
                msg.WRITE_BOOKING_EVENT,
                write("bk_waited", datetime.now(UTC) + timedelta(seconds=1)),
            )
        )
        await asyncio.sleep(1.5)
        assert not waiting.done()
        await conn.execute("SELECT pg_advisory_unlock(hashtext('booking_event:bk_waited'))")
        with pytest.raises(ServiceError) as waited:
            await waiting
        assert waited.value.code == "deadline_passed"
    finally:
        await conn.close()
    listing = await calendar_listing(caldav_account, calendar_url)
    assert "bk_past" not in listing and "bk_waited" not in listing
    assert await query(calendars_db, "SELECT * FROM booking_events") == []

    # in time, it is written
    written = await calendars_rpc.call(
        msg.WRITE_BOOKING_EVENT, write("bk_in_time", datetime.now(UTC) + timedelta(seconds=10))
    )
    assert written.uid == "bk_in_time"
    assert "bk_in_time" in await calendar_listing(caldav_account, calendar_url)
