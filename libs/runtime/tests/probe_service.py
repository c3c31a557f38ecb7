"""A small service built only from the runtime, to test the outbox, inbox and dead letters.

Run as ``python probe_service.py`` with ``CORTEX_PROBE_DATABASE_URL`` (a database with a
real service's migrations applied) and ``CORTEX_NATS_URL``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from pydantic_settings import SettingsConfigDict

from contracts import subjects
from contracts.envelope import Message
from contracts.rpc import EventSpec, Rpc
from contracts.system import Ping, Pong
from cortex_runtime import handlers
from cortex_runtime.database import UnitOfWork
from cortex_runtime.logs import configure_logging
from cortex_runtime.service import ServiceRuntime
from cortex_runtime.settings import ServiceSettings

PROBE = "probe"


class RecordThing(Message):
    value: str


class ThingRecorded(Message):
    value: str


class Recorded(Message):
    event_id: str


RECORD = Rpc(subjects.command(PROBE, "record_thing"), RecordThing, Recorded, "Record a thing")
RECORDED = EventSpec(subjects.event(PROBE, "thing_recorded"), ThingRecorded, "a recorded thing")
PING = Rpc(subjects.command(PROBE, "ping"), Ping, Pong, "Readiness of the probe")

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS things (message_id text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS effects (message_id text NOT NULL, value text NOT NULL)",
]
things = sa.table("things", sa.column("message_id"), sa.column("value"))
effects = sa.table("effects", sa.column("message_id"), sa.column("value"))


class ProbeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CORTEX_PROBE_")
    slow_seconds: float = 0.0


@dataclass(frozen=True)
class ProbeDeps:
    uow: Callable[[], UnitOfWork]
    slow_seconds: float


async def record(command: RecordThing, deps: ProbeDeps) -> Recorded:
    event = ThingRecorded(**command.caused(), value=command.value)
    async with deps.uow() as uow:
        await uow.execute(
            sa.insert(things).values(message_id=command.message_id, value=command.value)
        )
        await uow.add_event(RECORDED.subject, event)
        await uow.commit()
    return Recorded(event_id=event.message_id)


async def apply(event: ThingRecorded, deps: ProbeDeps, uow: UnitOfWork) -> None:
    if event.value == "poison":
        raise RuntimeError("this handler always fails")
    await uow.execute(sa.insert(effects).values(message_id=event.message_id, value=event.value))
    if event.value == "slow":  # outlive ack_wait so that the server redelivers meanwhile
        await asyncio.sleep(deps.slow_seconds)


# the runtime's handler table, as every service declares its own
HANDLERS: Final = (handlers.rpc(RECORD, record), handlers.event(RECORDED, apply))


def bootstrap(settings: ProbeSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(PROBE, settings, ping=PING)
    runtime.register(HANDLERS, ProbeDeps(uow=runtime.uow, slow_seconds=settings.slow_seconds))
    return runtime


if __name__ == "__main__":
    probe_settings = ProbeSettings()
    configure_logging(PROBE, "INFO", "json")
    asyncio.run(bootstrap(probe_settings).app().run())
