from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cortex_dev.pytest_plugin import PostgresInfo, Processes

PROBE = Path(__file__).with_name("probe_service.py")
sys.path.insert(0, str(PROBE.parent))


@pytest.fixture
def probe_db(service_database: Callable[[str], str], cortex_postgres: PostgresInfo) -> str:
    """A database with real migrations (identity's outbox/inbox) plus the probe's tables."""
    from probe_service import SCHEMA

    url = service_database("identity")
    cortex_postgres.execute(*SCHEMA, database=url.rsplit("/", 1)[1])
    return url


@pytest.fixture
def start_probe(processes: Processes, probe_db: str, nats_url: str) -> Callable[..., None]:
    def start(name: str = "probe", **env: str) -> None:
        processes.start(
            name,
            [sys.executable, str(PROBE)],
            {
                "CORTEX_ENV": "test",
                "CORTEX_NATS_URL": nats_url,
                "CORTEX_PROBE_DATABASE_URL": probe_db,
                "CORTEX_PROBE_OUTBOX_POLL_SECONDS": "0.2",
                **env,
            },
        )
        processes.wait_for_log(name, "service ready")

    return start
