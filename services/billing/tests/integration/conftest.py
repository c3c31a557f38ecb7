"""Billing's test servers: localstripe (customers, subscriptions) behind the local fake of
the Stripe endpoints it lacks (checkout and billing-portal sessions), and the billing
service as processes against real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from billing_harness import PRICES, StartBilling, StripeServers, billing_env

from cortex_dev.embedded import free_port
from cortex_dev.fakes.server import run_in_thread
from cortex_dev.fakes.stripe import FakeStripe
from cortex_dev.pytest_plugin import Processes, rpc_client
from cortex_runtime.client import RpcClient


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """localstripe (the real package) served in-process on a loopback port."""
    from aiohttp import web
    from localstripe.server import app

    port = free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stopped = asyncio.Event()

    async def serve() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await stopped.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(15), "localstripe did not start"
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(stopped.set)
    thread.join(10)


@pytest.fixture
def stripe_servers(localstripe_url: str) -> Iterator[StripeServers]:
    fake = FakeStripe(upstream=localstripe_url)
    for price in PRICES.values():
        fake.add_price(price)
    url, stop = run_in_thread(fake.app)
    try:
        yield StripeServers(fake, url, localstripe_url)
    finally:
        stop()


@pytest.fixture
def billing_db(service_database: Callable[[str], str]) -> str:
    return service_database("billing")


@pytest.fixture
def start_billing(
    processes: Processes, billing_db: str, nats_url: str, stripe_servers: StripeServers
) -> StartBilling:
    """``start_billing(replicas=1, **env)``: billing processes, waited for until ready."""
    return functools.partial(
        processes.start_service,
        "billing",
        database_url=billing_db,
        nats_url=nats_url,
        **billing_env(stripe_servers.url),
    )


@pytest.fixture
async def rpc(nats_url: str) -> AsyncIterator[RpcClient]:
    async with rpc_client(nats_url, "billing-tests") as client:
        yield client
