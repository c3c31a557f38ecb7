"""A consumer's delivery policy: a database outage is waited out, never dead-lettered.

The probe service runs on a PostgreSQL cluster of this test's own, so the test can stop it
for longer than the old policy lasted (five deliveries, about 4 s of backoff) and start it
again; the event published meanwhile still takes effect, once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js.api import ConsumerConfig
from probe_service import PROBE, RECORDED, SCHEMA, ThingRecorded

from contracts import subjects
from cortex_dev.embedded import Postgres, free_port
from cortex_dev.pytest_plugin import Processes
from cortex_runtime.broker import Delivery, backoff_seconds

pytestmark = pytest.mark.integration

PROBE_SERVICE = Path(__file__).with_name("probe_service.py")
DURABLE = subjects.durable_name(PROBE, RECORDED.subject)


def _own_database(postgres: Postgres) -> str:
    """A database on ``postgres`` with identity's migrations (outbox, inbox) and the probe's
    tables; its asyncpg SQLAlchemy URL."""

    async def create() -> None:
        conn = await asyncpg.connect(postgres.admin_url())
        try:
            await conn.execute('CREATE DATABASE "probe"')
        finally:
            await conn.close()

    asyncio.run(create())
    url = postgres.admin_url("probe").replace("postgresql://", "postgresql+asyncpg://")
    subprocess.run(
        [sys.executable, "-m", "identity", "migrate"],
        env={**os.environ, "CORTEX_IDENTITY_DATABASE_URL": url, "CORTEX_ENV": "test"},
        check=True,
        capture_output=True,
    )

    async def tables() -> None:
        conn = await asyncpg.connect(postgres.admin_url("probe"))
        try:
            for statement in SCHEMA:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(tables())
    return url


def _start_probe(processes: Processes, database_url: str, nats_url: str) -> None:
    processes.start(
        "probe",
        [sys.executable, str(PROBE_SERVICE)],
        {
            "CORTEX_ENV": "test",
            "CORTEX_NATS_URL": nats_url,
            "CORTEX_PROBE_DATABASE_URL": database_url,
            "CORTEX_PROBE_OUTBOX_POLL_SECONDS": "0.2",
        },
    )
    processes.wait_for_log("probe", "service ready")


def _effects(postgres: Postgres) -> list[str]:
    async def read() -> list[str]:
        conn = await asyncpg.connect(postgres.admin_url("probe"))
        try:
            return [r["message_id"] for r in await conn.fetch("SELECT message_id FROM effects")]
        finally:
            await conn.close()

    return asyncio.run(read())


def test_an_event_outlasts_a_database_outage(
    tmp_path: Path, processes: Processes, nats_url: str
) -> None:
    postgres = Postgres(tmp_path / "pg", free_port())
    postgres.start(log_file=tmp_path / "postgres.log")
    try:
        database_url = _own_database(postgres)
        _start_probe(processes, database_url, nats_url)
        event = ThingRecorded(value="during-outage")
        postgres.stop()
        outage_started = time.monotonic()

        async def publish() -> None:
            nc = await nats.connect(nats_url)
            try:
                js = nc.jetstream()
                await js.publish(
                    RECORDED.subject,
                    event.model_dump_json().encode(),
                    stream=subjects.stream_name(PROBE),
                    headers={"Nats-Msg-Id": event.message_id},
                )
            finally:
                await nc.close()

        asyncio.run(publish())
        # twice as long as five deliveries' backoff (0.25 + 0.5 + 1 + 2 s)
        time.sleep(8.0)
        postgres.start(log_file=tmp_path / "postgres.log")
        outage = time.monotonic() - outage_started
        assert outage > 8.0
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and _effects(postgres) != [event.message_id]:
            time.sleep(0.3)
        assert _effects(postgres) == [event.message_id]

        async def consumer_state() -> tuple[int, int]:
            nc = await nats.connect(nats_url)
            try:
                js = nc.jetstream()
                try:
                    dead = (await js.stream_info(subjects.DEAD_LETTER_STREAM)).state.messages
                except nats.js.errors.NotFoundError:
                    dead = 0
                info = await js.consumer_info(subjects.stream_name(PROBE), DURABLE)
                return dead, info.num_ack_pending + info.num_pending
            finally:
                await nc.close()

        assert asyncio.run(consumer_state()) == (0, 0)
        log = processes.log("probe")
        assert "a dependency is unreachable; will redeliver" in log
        assert "dead-lettered" not in log
    finally:
        postgres.stop()


async def test_a_durable_made_under_an_older_policy_gets_the_declared_limit(
    processes: Processes, probe_db: str, nats_url: str
) -> None:
    """A durable consumer keeps the configuration it was created with: the service brings
    the server's delivery limit up to its declared policy when it starts."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        stream = subjects.stream_name(PROBE)
        await js.add_stream(name=stream, subjects=[subjects.events_wildcard(PROBE)])
        await js.add_consumer(
            stream,
            ConsumerConfig(
                durable_name=DURABLE, filter_subject=RECORDED.subject, max_deliver=6, ack_wait=30
            ),
        )
        _start_probe(processes, probe_db, nats_url)
        info = await js.consumer_info(stream, DURABLE)
        assert info.config.max_deliver == Delivery().server_max_deliver == -1
    finally:
        await nc.close()


def test_the_backoff_is_capped_whatever_the_count() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert backoff_seconds(100_000) == 30.0  # an outage's thousandth delivery: no overflow
    assert backoff_seconds(50, longest=5.0) == 5.0
    assert Delivery(outlast_outages=False, max_deliver=3).server_max_deliver == 4
