"""A service answers many requests to one subject at once, up to its limit."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contracts.rpc import Rpc
from contracts.system import Ping, Pong
from cortex_runtime.broker import build_broker, serve_rpc
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceUnavailable


async def _in_flight_together(nats_url: str, concurrency: int, callers: int) -> int:
    """Serve a handler that answers only once ``callers`` requests are inside it at the
    same time; the number of calls that were answered within the timeout."""
    rpc: Rpc[Ping, Pong] = Rpc(
        subject=f"probe.{uuid.uuid4().hex[:8]}.together", request=Ping, reply=Pong, summary="-"
    )
    inside = 0
    everyone = asyncio.Event()

    async def handler(_: Ping) -> Pong:
        nonlocal inside
        inside += 1
        if inside >= callers:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), timeout=3)
        return Pong(service="probe", instance="probe:0", version="0", database=True)

    server = build_broker(nats_url, "probe-server")
    serve_rpc(server, rpc, handler, concurrency=concurrency)
    client_broker = build_broker(nats_url, "probe-client")
    await server.start()
    await client_broker.start()
    try:
        client = RpcClient(client_broker, timeout=2)

        async def one() -> bool:
            try:
                await client.call(rpc, Ping())
            except ServiceUnavailable:
                return False
            return True

        answered = await asyncio.gather(*(one() for _ in range(callers)))
        return sum(answered)
    finally:
        await client_broker.stop()
        await server.stop()


@pytest.mark.integration
async def test_requests_to_one_subject_run_at_the_same_time(nats_url: str) -> None:
    assert await _in_flight_together(nats_url, concurrency=8, callers=8) == 8


@pytest.mark.integration
async def test_one_at_a_time_is_what_a_limit_of_one_means(nats_url: str) -> None:
    # the contrast that shows the test above can fail: served one by one, the first request
    # waits for the others in vain and none is answered within the callers' timeout
    assert await _in_flight_together(nats_url, concurrency=1, callers=3) == 0
