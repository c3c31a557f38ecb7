"""The calendars service as processes against real NATS and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable

import pytest
from calendars_harness import StartCalendars, calendars_env

from cortex_dev.pytest_plugin import Processes, rpc_client
from cortex_runtime.client import RpcClient


@pytest.fixture
def calendars_db(service_database: Callable[[str], str]) -> str:
    return service_database("calendars")


@pytest.fixture
def start_calendars(processes: Processes, calendars_db: str, nats_url: str) -> StartCalendars:
    """``start_calendars(replicas=1, **env)``: calendars processes, waited for until ready."""
    return functools.partial(
        processes.start_service,
        "calendars",
        database_url=calendars_db,
        nats_url=nats_url,
        **calendars_env(),
    )


@pytest.fixture
async def calendars_rpc(nats_url: str) -> AsyncIterator[RpcClient]:
    async with rpc_client(nats_url, "calendars-tests") as client:
        yield client
