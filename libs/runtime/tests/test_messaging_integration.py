"""The outbox, the inbox and the dead-letter path against real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import asyncpg
import nats
import pytest
from probe_service import PING, RECORD, RECORDED, RecordThing, ThingRecorded

from contracts import subjects
from contracts.system import Ping
from cortex_dev.pytest_plugin import Processes
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient

pytestmark = pytest.mark.integration


async def call(nats_url: str, value: str) -> str:
    broker = build_broker(nats_url, "test-client")
    async with broker:
        await broker.connect()
        reply = await RpcClient(broker, timeout=10).call(RECORD, RecordThing(value=value))
    return reply.event_id


async def rows(db_url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url.replace("+asyncpg", ""))
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def eventually(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result is None or result:
                return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_event_committed_but_not_relayed_survives_sigkill(
    start_probe: Callable[..., None], processes: Processes, probe_db: str, nats_url: str
) -> None:
    # the relay is off: the state change and its outbox row commit, nothing is published
    start_probe("writer", CORTEX_PROBE_OUTBOX_RELAY_ENABLED="false")
    event_id = await call(nats_url, "kept")
    outbox = await rows(probe_db, "SELECT message_id, published_at FROM outbox")
    assert [(r["message_id"], r["published_at"]) for r in outbox] == [(event_id, None)]
    processes.kill("writer")  # SIGKILL after commit, before any publish

    start_probe("restarted")

    async def applied_once() -> None:
        effects = await rows(probe_db, "SELECT message_id, value FROM effects")
        assert [(r["message_id"], r["value"]) for r in effects] == [(event_id, "kept")]

    await eventually(applied_once)
    await asyncio.sleep(1.0)  # nothing more arrives later
    await applied_once()
    published = await rows(probe_db, "SELECT published_at FROM outbox")
    assert published[0]["published_at"] is not None


async def test_duplicate_and_redelivered_events_take_effect_once(
    start_probe: Callable[..., None], probe_db: str, nats_url: str
) -> None:
    start_probe(CORTEX_PROBE_CONSUMER_ACK_WAIT_SECONDS="1", CORTEX_PROBE_SLOW_SECONDS="2.5")
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        event = ThingRecorded(value="slow")
        payload = event.model_dump_json().encode()
        stream = subjects.stream_name("probe")
        # the same event twice under two publish ids: JetStream keeps both
        await js.publish(RECORDED.subject, payload, stream=stream, headers={"Nats-Msg-Id": "a"})
        await js.publish(RECORDED.subject, payload, stream=stream, headers={"Nats-Msg-Id": "b"})

        async def delivered_more_than_twice() -> None:
            info = await js.consumer_info(stream, subjects.durable_name("probe", RECORDED.subject))
            # the slow handler outlives ack_wait, so the server redelivered meanwhile
            assert info.num_redelivered >= 1 or info.delivered.consumer_seq >= 3, info

        await eventually(delivered_more_than_twice)

        async def settled() -> None:
            info = await js.consumer_info(stream, subjects.durable_name("probe", RECORDED.subject))
            assert info.num_ack_pending == 0 and info.num_pending == 0, info

        await eventually(settled, timeout=30)
    finally:
        await nc.close()
    effects = await rows(probe_db, "SELECT message_id FROM effects")
    assert [r["message_id"] for r in effects] == [event.message_id]


async def test_always_failing_handler_ends_in_dead_letters(
    start_probe: Callable[..., None], processes: Processes, nats_url: str
) -> None:
    start_probe(CORTEX_PROBE_CONSUMER_MAX_DELIVER="3")
    event_id = await call(nats_url, "poison")
    durable = subjects.durable_name("probe", RECORDED.subject)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:

        async def dead_lettered() -> None:
            info = await js.stream_info(subjects.DEAD_LETTER_STREAM)
            assert info.state.messages == 1

        await eventually(dead_lettered)
        msg = await js.get_last_msg(
            subjects.DEAD_LETTER_STREAM, subjects.dead_letter("probe", durable)
        )
        assert json.loads(msg.data)["message_id"] == event_id
        assert msg.headers is not None and msg.headers["Cortex-Deliveries"] == "3"
        assert "this handler always fails" in msg.headers["Cortex-Error"]

        await asyncio.sleep(2.0)  # not retried any more
        info = await js.consumer_info(subjects.stream_name("probe"), durable)
        assert info.delivered.consumer_seq == 3
        assert info.num_ack_pending == 0 and info.num_pending == 0
    finally:
        await nc.close()

    log_lines = [
        json.loads(line) for line in processes.log("probe").splitlines() if line.startswith("{")
    ]
    dead = [line for line in log_lines if line["msg"].startswith("event dead-lettered")]
    assert len(dead) == 1 and dead[0]["durable"] == durable
    broker = build_broker(nats_url, "test-client")
    async with broker:
        await broker.connect()
        pong = await RpcClient(broker).call(PING, Ping())
    assert pong.counters["dead_letters"] == 1
    assert pong.counters["event_redeliveries"] == 2


async def test_relay_survives_a_nats_outage(
    start_probe: Callable[..., None], probe_db: str, nats_server: object, tmp_path: object
) -> None:
    from cortex_dev.embedded import NatsServer

    if not isinstance(nats_server, NatsServer):
        pytest.skip("needs an embedded NATS server it can restart")
    start_probe(CORTEX_PROBE_OUTBOX_POLL_SECONDS="0.2")
    event_id = await call(nats_server.url, "before-outage")
    nats_server.stop()
    # written while NATS is down: through the database directly, as a handler would
    conn = await asyncpg.connect(probe_db.replace("+asyncpg", ""))
    try:
        late = ThingRecorded(value="during-outage")
        await conn.execute(
            "INSERT INTO outbox (message_id, subject, payload) VALUES ($1, $2, $3)",
            late.message_id,
            RECORDED.subject,
            late.model_dump_json().encode(),
        )
    finally:
        await conn.close()
    await asyncio.sleep(1.5)
    nats_server.start()

    async def both_applied() -> None:
        effects = await rows(probe_db, "SELECT message_id FROM effects ORDER BY value")
        assert sorted(r["message_id"] for r in effects) == sorted([event_id, late.message_id])

    await eventually(both_applied, timeout=40)
