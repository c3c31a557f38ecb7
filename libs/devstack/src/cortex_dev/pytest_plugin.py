"""The test harness: real NATS and PostgreSQL, isolated per test.

* PostgreSQL: one embedded cluster per test session (per xdist worker), or the server
  at ``CORTEX_TEST_POSTGRES_URL`` (a superuser URL). Each test that asks gets its own
  database, copied from a template that the service's real migrations built once.
* NATS: a fresh embedded ``nats-server`` with JetStream per test (it starts in
  milliseconds, so streams and consumers never leak between tests), or the server at
  ``CORTEX_TEST_NATS_URL`` (then tests share it).
* :class:`Processes` starts the project's own programs as real processes and makes
  sure none outlives its test; :meth:`Processes.start_service` runs a service on a test's
  database and NATS.
* What integration tests do with them: read a database (:func:`query`), wait for a
  condition (:func:`eventually`), publish events as their owner's outbox relay would
  (:func:`publish_events`) and call a service (:func:`rpc_client`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from contracts.envelope import Message
from contracts.rpc import EventSpec
from cortex_dev.embedded import (
    NatsServer,
    Postgres,
    Radicale,
    die_with_parent,
    free_port,
    run_sync,
    stop_process,
)
from cortex_runtime.broker import build_broker, ensure_stream, event_stream, publish_raw
from cortex_runtime.client import RpcClient

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[4]


@dataclass
class PostgresInfo:
    admin_url: str  # postgresql://user:pw@host:port/db

    def url_for(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base.replace('postgresql://', f'{driver}://', 1)}/{database}"

    def execute(self, *statements: str, database: str = "postgres") -> None:
        async def go() -> None:
            conn = await asyncpg.connect(self.url_for(database, "postgresql"))
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        run_sync(go)


@pytest.fixture(scope="session")
def cortex_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresInfo]:
    external = os.environ.get("CORTEX_TEST_POSTGRES_URL")
    if external:
        yield PostgresInfo(external)
        return
    data = tmp_path_factory.mktemp("pg") / "data"
    server = Postgres(data, free_port()).start(log_file=data.parent / "postgres.log")
    try:
        yield PostgresInfo(server.admin_url())
    finally:
        server.stop()


@pytest.fixture(scope="session")
def migrated_template(cortex_postgres: PostgresInfo) -> Callable[[str], str]:
    """``template(service)``: a database with that service's migrations applied, built once."""
    built: dict[str, str] = {}
    suffix = uuid.uuid4().hex[:8]

    def template(service: str) -> str:
        if service not in built:
            name = f"tmpl_{service}_{suffix}"
            cortex_postgres.execute(f'CREATE DATABASE "{name}"')
            cortex_postgres.execute('CREATE EXTENSION IF NOT EXISTS "btree_gist"', database=name)
            env = {
                **os.environ,
                f"CORTEX_{service.upper()}_DATABASE_URL": cortex_postgres.url_for(name),
                "CORTEX_ENV": "test",
            }
            subprocess.run(
                [sys.executable, "-m", service, "migrate"], env=env, check=True, capture_output=True
            )
            built[service] = name
        return built[service]

    return template


@pytest.fixture
def service_database(
    cortex_postgres: PostgresInfo, migrated_template: Callable[[str], str]
) -> Iterator[Callable[[str], str]]:
    """``make(service) -> url``: a fresh, migrated database for this test alone."""
    created: list[str] = []

    def make(service: str) -> str:
        name = f"t_{service}_{uuid.uuid4().hex[:12]}"
        cortex_postgres.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template(service)}"')
        created.append(name)
        return cortex_postgres.url_for(name)

    yield make
    for name in created:
        _drop_database(cortex_postgres, name)


def _drop_database(postgres: PostgresInfo, name: str, attempts: int = 3) -> None:
    """Drop a test's database; ``WITH (FORCE)`` ends the sessions still in it, and now and then
    the server closes our admin session too while doing so: try again on a new one."""
    for attempt in range(1, attempts + 1):
        try:
            postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (asyncpg.ConnectionDoesNotExistError, asyncpg.CannotConnectNowError, OSError):
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer | str]:
    """A NATS server with JetStream for this test alone (or the shared external one)."""
    external = os.environ.get("CORTEX_TEST_NATS_URL")
    if external:
        yield external
        return
    server = NatsServer(tmp_path / "nats", free_port(), tmp_path / "nats.log").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def nats_url(nats_server: NatsServer | str) -> str:
    return nats_server if isinstance(nats_server, str) else nats_server.url


@dataclass
class Processes:
    """Programs of the project run as real processes; all are stopped after the test."""

    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            args,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log.close()
        self.running[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        stop_process(self.running[name], sig)

    def wait_for_log(self, name: str, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log(name):
                return
            proc = self.running[name]
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}"
                )
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the log of {name}:\n{self.log(name)[-3000:]}")

    def start_service(
        self, service: str, *, database_url: str, nats_url: str, replicas: int = 1, **env: str
    ) -> list[str]:
        """``replicas`` processes of ``python -m <service>`` on that database and NATS
        (``CORTEX_ENV=test``, ``env`` on top), each waited for until it is ready; their
        names, ``<service>-<n>`` with ``n`` counting every process of the test.

        A service's conftest binds its database and settings once, e.g.
        ``functools.partial(processes.start_service, "billing", database_url=db,
        nats_url=nats_url, **billing_env)``, and a test adds replicas and settings."""
        names = []
        for _ in range(replicas):
            name = f"{service}-{len(self.running) + 1}"
            self.start(
                name,
                [sys.executable, "-m", service],
                {
                    "CORTEX_ENV": "test",
                    "CORTEX_NATS_URL": nats_url,
                    f"CORTEX_{service.upper()}_DATABASE_URL": database_url,
                    **env,
                },
            )
            self.wait_for_log(name, "service ready")
            names.append(name)
        return names

    def stop_all(self) -> None:
        for proc in self.running.values():
            stop_process(proc, signal.SIGTERM, timeout=10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """The rows of ``sql`` on a database (a service's SQLAlchemy URL or a libpq one)."""
    conn = await asyncpg.connect(database_url.replace("+asyncpg", "", 1))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def eventually(
    check: Callable[[], Awaitable[T]], what: str, timeout: float = 15, every: float = 0.1
) -> T:
    """``await check()``'s first truthy answer within ``timeout`` seconds, else an
    AssertionError saying ``what`` is still not so."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout}s (last: {result!r})")
        await asyncio.sleep(every)


async def publish_events(nats_url: str, *items: tuple[EventSpec[Any], Message]) -> None:
    """Publish events as their owner's outbox relay would (its stream, Nats-Msg-Id)."""
    broker = build_broker(nats_url, "tests-publisher")
    await broker.connect()
    try:
        for owner in dict.fromkeys(spec.owner for spec, _ in items):
            await ensure_stream(broker, event_stream(owner))
        for spec, event in items:
            await publish_raw(
                broker,
                spec.subject,
                event.model_dump_json().encode(),
                {"Nats-Msg-Id": event.message_id},
            )
    finally:
        await broker.stop()


@asynccontextmanager
async def rpc_client(nats_url: str, name: str, timeout: float = 30) -> AsyncIterator[RpcClient]:
    """A request/reply client on its own NATS connection, named ``name``."""
    broker = build_broker(nats_url, name)
    async with broker:
        await broker.connect()
        yield RpcClient(broker, timeout=timeout)


@pytest.fixture(scope="session")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """A real CalDAV server for the session; each test makes its own user."""
    server = Radicale(tmp_path_factory.mktemp("radicale"), free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class CaldavAccount:
    url: str
    username: str
    password: str


@pytest.fixture
def caldav_account(radicale_server: Radicale) -> CaldavAccount:
    """A fresh Radicale user (no calendars yet)."""
    username = f"user{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    radicale_server.add_user(username, password)
    return CaldavAccount(radicale_server.url, username, password)


REPORT_PROPERTY = "resilience_report"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reports tests attached as the ``resilience_report`` user property.

    User properties travel with test reports from xdist workers, so the summary shows in
    ``make test`` output whatever worker ran the scenario.
    """
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", None) or []
        if name == REPORT_PROPERTY
    ]
    if lines:
        terminalreporter.write_sep("=", "resilience report")
        for line in dict.fromkeys(lines):  # each once, in order
            terminalreporter.write_line(str(line))
