"""Billing refuses a saga's command that arrives past its deadline: nothing is reserved or
committed for a saga that stopped waiting."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from billing_harness import StartBilling

from contracts import billing as msg
from contracts.rpc import ErrorKind
from cortex_dev.pytest_plugin import query
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning"),
]


async def test_quota_commands_past_their_deadline_do_nothing(
    start_billing: StartBilling, rpc: RpcClient, billing_db: str
) -> None:
    start_billing()
    tenant = f"tn_{uuid.uuid4().hex[:20]}"

    def reserve(booking: str, deadline: datetime) -> msg.ReserveBookingQuota:
        return msg.ReserveBookingQuota(tenant_id=tenant, booking_id=booking, deadline=deadline)

    with pytest.raises(ServiceError) as late:
        await rpc.call(
            msg.RESERVE_BOOKING_QUOTA, reserve("bk_late", datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (late.value.kind, late.value.code) == (ErrorKind.UNAVAILABLE, "deadline_passed")

    # in time, but waiting for the month's counter (locked here, as a concurrent reservation
    # would) until after the deadline: refused, and nothing counted
    month = datetime.now(UTC).date().replace(day=1)
    conn = await asyncpg.connect(billing_db.replace("+asyncpg", ""))
    try:
        await conn.execute(
            "INSERT INTO quota_months (tenant_id, month) VALUES ($1, $2)", tenant, month
        )
        lock = conn.transaction()
        await lock.start()
        await conn.execute("SELECT * FROM quota_months WHERE tenant_id = $1 FOR UPDATE", tenant)
        waiting = asyncio.create_task(
            rpc.call(
                msg.RESERVE_BOOKING_QUOTA,
                reserve("bk_waited", datetime.now(UTC) + timedelta(seconds=1)),
            )
        )
        await asyncio.sleep(1.5)
        assert not waiting.done()
        await lock.rollback()
        with pytest.raises(ServiceError) as waited:
            await waiting
        assert waited.value.code == "deadline_passed"
    finally:
        await conn.close()
    assert (
        await query(billing_db, "SELECT * FROM quota_reservations WHERE tenant_id = $1", tenant)
        == []
    )
    [counter] = await query(
        billing_db, "SELECT used FROM quota_months WHERE tenant_id = $1", tenant
    )
    assert counter["used"] == 0

    # in time: reserved; a commit past its deadline commits nothing, a fresh one does
    soon = datetime.now(UTC) + timedelta(seconds=10)
    reserved = await rpc.call(msg.RESERVE_BOOKING_QUOTA, reserve("bk_ok", soon))
    assert reserved.used == 1
    with pytest.raises(ServiceError) as late_commit:
        await rpc.call(
            msg.COMMIT_BOOKING_QUOTA,
            msg.CommitBookingQuota(
                tenant_id=tenant, booking_id="bk_ok", deadline=datetime.now(UTC)
            ),
        )
    assert late_commit.value.code == "deadline_passed"
    [state] = await query(
        billing_db, "SELECT state FROM quota_reservations WHERE booking_id = 'bk_ok'"
    )
    assert state["state"] == "reserved"
    committed = await rpc.call(
        msg.COMMIT_BOOKING_QUOTA,
        msg.CommitBookingQuota(
            tenant_id=tenant, booking_id="bk_ok", deadline=datetime.now(UTC) + timedelta(seconds=10)
        ),
    )
    assert committed.state == "committed"
