"""A calendar write that arrives after the saga gave up creates nothing, end to end.

Calendars answers one event write at a time here (CORTEX_CALENDARS_RPC_CONCURRENCY=1), and
a first write is held up on its booking's lock: the booking's own write queues behind it,
booking stops waiting after its participant timeout and compensates (the delete finds
nothing). When the queue moves on, the booking's write arrives past its deadline and after
the delete: no event may appear for the failed booking.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from contracts import calendars as cal
from tests.e2e.harness import (
    WHOLE_DAY,
    System,
    SystemOptions,
    book,
    free_at,
    future_day,
    make_owner,
    radicale_uids,
)

pytestmark = pytest.mark.e2e

PARTICIPANT_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        environ={
            "CORTEX_CALENDARS_RPC_CONCURRENCY": "1",
            "CORTEX_BOOKING_PARTICIPANT_TIMEOUT_SECONDS": str(PARTICIPANT_TIMEOUT),
            "CORTEX_GATEWAY_BOOKING_TIMEOUT_SECONDS": "30",
        }
    )


class AdvisoryLock:
    """A PostgreSQL session advisory lock held from a thread until released."""

    def __init__(self, database_url: str, key: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._key = key
        self._conn: asyncpg.Connection = self._run(asyncpg.connect(database_url))
        self._run(self._conn.execute("SELECT pg_advisory_lock(hashtext($1))", key))

    def _run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)  # type: ignore[arg-type]

    def release(self) -> None:
        self._run(self._conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._key))
        self._run(self._conn.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def test_a_write_arriving_after_the_saga_gave_up_creates_no_event(system: System) -> None:
    owner = make_owner(system, hours=WHOLE_DAY)
    day = future_day(4)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    calendars_db = system.database_url("calendars")

    # a first write holds calendars' only write worker, waiting for its booking's lock
    lock = AdvisoryLock(calendars_db, "booking_event:bk_blocker")
    blocker: Future[cal.BookingEventWritten] = Future()

    def first_write() -> None:
        try:
            blocker.set_result(
                system.bus.call(
                    cal.WRITE_BOOKING_EVENT,
                    cal.WriteBookingEvent(
                        tenant_id=owner.tenant_id,
                        booking_id="bk_blocker",
                        start=start + timedelta(hours=3),
                        end=start + timedelta(hours=4),
                        summary="Blocker",
                    ),
                )
            )
        except Exception as exc:
            blocker.set_exception(exc)

    threading.Thread(target=first_write, daemon=True).start()
    time.sleep(1.0)
    try:
        began = time.monotonic()
        answer = book(system.gateway, owner, start, start + timedelta(minutes=30))
        assert time.monotonic() - began >= PARTICIPANT_TIMEOUT, answer.text
        assert answer.status_code >= 400, answer.text  # the write never answered in time
    finally:
        lock.release()
    assert blocker.result(30).uid == "bk_blocker"

    [row] = system.rows(
        "booking", "SELECT id, status FROM bookings WHERE tenant_id = $1", owner.tenant_id
    )
    assert row["status"] == "failed"
    # a write sent now queues behind the booking's late one: once it is answered, the late
    # write has run, and was refused
    after = system.bus.call(
        cal.WRITE_BOOKING_EVENT,
        cal.WriteBookingEvent(
            tenant_id=owner.tenant_id,
            booking_id="bk_after",
            start=start + timedelta(hours=5),
            end=start + timedelta(hours=6),
            summary="After",
        ),
    )
    assert after.uid == "bk_after"
    assert sorted(radicale_uids(owner)) == ["bk_after", "bk_blocker"]
    assert (
        system.rows("calendars", "SELECT * FROM booking_events WHERE booking_id = $1", row["id"])
        == []
    )
    [tomb] = system.rows(
        "calendars", "SELECT tenant_id FROM booking_tombstones WHERE booking_id = $1", row["id"]
    )
    assert tomb["tenant_id"] == owner.tenant_id
    # the slot is free again
    assert free_at(system, owner, day, "10:00")
