"""The calendars service as processes against real NATS and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable

import pytest
from calendars_harness import StartCalendars, calendars_env

from cortex_dev.pytest_plugin import Processes
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient


@pytest.fixture
def calendars_db(service_database: Callable[[str], str]) -> str:
    return service_database("calendars")


@pytest.fixture
def start_calendars(processes: Processes, calendars_db: str, nats_url: str) -> StartCalendars:
    """``start_calendars(replicas=1, **env)``: calendars processes, waited for until ready."""

    def start(replicas: int = 1, **env: str) -> None:
        for _ in range(replicas):
            name = f"calendars-{len(processes.running) + 1}"
            processes.start(
                name,
                [sys.executable, "-m", "calendars"],
                {**calendars_env(calendars_db, nats_url), **env},
            )
            processes.wait_for_log(name, "service ready")

    return start


@pytest.fixture
async def calendars_rpc(nats_url: str) -> AsyncIterator[RpcClient]:
    broker = build_broker(nats_url, "calendars-tests")
    async with broker:
        await broker.connect()
        yield RpcClient(broker, timeout=30)
