"""One service process: its broker, database, outbox relay and readiness.

A service's ``bootstrap(settings)`` builds a :class:`ServiceRuntime`, registers its
handlers with :meth:`ServiceRuntime.rpc` and :meth:`ServiceRuntime.consumer`, and
returns it; :func:`main` runs it (``serve``) or migrates its database (``migrate``).
Nothing connects at import time: the database and the relay are made in the lifespan.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from faststream import AsyncAPI, FastStream

from contracts import subjects
from contracts.envelope import Message
from contracts.rpc import EventSpec, Rpc
from contracts.system import PINGS, Ping, Pong
from cortex_runtime import broker as messaging
from cortex_runtime import metrics
from cortex_runtime.database import Database, UnitOfWork
from cortex_runtime.handlers import EventRoute, Route, RpcRoute
from cortex_runtime.logs import configure_logging
from cortex_runtime.migrations import upgrade
from cortex_runtime.outbox import OutboxRelay
from cortex_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT", bound=Message)
EvtT = TypeVar("EvtT", bound=Message)
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
DepsT = TypeVar("DepsT")
T = TypeVar("T")
EventHandler = Callable[[EvtT, UnitOfWork], Awaitable[None]]

VERSION = "0.1.0"


class ServiceRuntime:
    def __init__(
        self, name: str, settings: ServiceSettings, ping: Rpc[Ping, Pong] | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.broker = messaging.build_broker(settings.nats_url, name=f"cortex-{name}")
        self._db: Database | None = None
        self._relay: OutboxRelay | None = None
        self._background: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        ping = ping or PINGS.get(name)
        if ping is not None:
            self.rpc(ping)(self._ping)

    # --- wiring ---------------------------------------------------------------
    def rpc(
        self, rpc: Rpc[ReqT, RepT]
    ) -> Callable[[Callable[[ReqT], Awaitable[RepT]]], Callable[[ReqT], Awaitable[RepT]]]:
        def register(
            handler: Callable[[ReqT], Awaitable[RepT]],
        ) -> Callable[[ReqT], Awaitable[RepT]]:
            messaging.serve_rpc(
                self.broker, rpc, handler, concurrency=self.settings.rpc_concurrency
            )
            return handler

        return register

    def consumer(
        self, spec: EventSpec[EvtT], *, delivery: messaging.Delivery | None = None
    ) -> Callable[[EventHandler[EvtT]], EventHandler[EvtT]]:
        """Handle ``spec`` events exactly once in effect.

        The handler runs inside a unit of work whose inbox row (durable name, event id)
        commits together with the handler's changes; a redelivered or re-sent event finds
        the row and is acknowledged without running the handler again. ``delivery``: how
        failures are retried (default: :meth:`delivery`).
        """
        durable = subjects.durable_name(self.name, spec.subject)

        def register(handler: EventHandler[EvtT]) -> EventHandler[EvtT]:
            async def once(event: EvtT) -> None:
                async with self.uow() as uow:
                    if await uow.first_delivery(durable, event.message_id):
                        await handler(event, uow)
                    else:
                        metrics.increment("duplicates_dropped")
                    await uow.commit()

            messaging.consume_event(
                self.broker,
                spec,
                self.name,
                once,
                ack_wait=self.settings.consumer_ack_wait_seconds,
                delivery=delivery or self.delivery(),
                concurrency=self.settings.consumer_concurrency,
            )
            return handler

        return register

    def register(self, routes: Iterable[Route[DepsT]], deps: DepsT) -> None:
        """Serve a table of handlers (:mod:`cortex_runtime.handlers`), each called with
        ``deps``."""
        for route in routes:
            if isinstance(route, RpcRoute):
                self.rpc(route.spec)(_bound_rpc(route.handler, deps))
            elif isinstance(route, EventRoute):
                self.consumer(route.spec, delivery=route.delivery)(
                    _bound_event(route.handler, deps)
                )
            else:
                messaging.consume_event(
                    self.broker,
                    route.spec,
                    self.name,
                    _bound_rpc(route.handler, deps),
                    ack_wait=route.ack_wait or self.settings.consumer_ack_wait_seconds,
                    delivery=route.delivery or self.delivery(),
                    concurrency=self.settings.consumer_concurrency,
                )

    def delivery(self, **overrides: Any) -> messaging.Delivery:
        """This service's delivery policy (``CORTEX_<SERVICE>_CONSUMER_MAX_DELIVER``: failed
        attempts before a message is dead-lettered; outages are waited out), with
        ``overrides`` of :class:`~cortex_runtime.broker.Delivery`'s fields."""
        return messaging.Delivery(
            **{"max_deliver": self.settings.consumer_max_deliver, **overrides}
        )

    def background(self, loop: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Run ``loop`` while the service runs (started after startup, cancelled at shutdown).

        Every replica runs it: the loop must claim its work (``FOR UPDATE SKIP LOCKED``).
        """
        self._background.append(loop)
        return loop

    # --- what handlers use ----------------------------------------------------
    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError(f"{self.name}: the database is made when the service starts")
        return self._db

    def uow(self) -> UnitOfWork:
        relay = self._relay
        return UnitOfWork(self.db, relay.wake if relay is not None else None)

    def reader(self) -> UnitOfWork:
        """A unit of work for reads only, in autocommit (no BEGIN/ROLLBACK round trips)."""
        return UnitOfWork(self.db, read_only=True)

    # --- lifecycle --------------------------------------------------------------
    def app(self) -> FastStream:
        app = FastStream(
            self.broker,
            specification=AsyncAPI(
                title=f"cortex-{self.name}",
                version=VERSION,
                description=f"Messages the Cortex {self.name} service serves and consumes.",
            ),
        )
        app.on_startup(self._open)
        app.after_startup(self._started)
        app.on_shutdown(self._close)
        return app

    async def _open(self) -> None:
        self._db = Database(
            self.settings.database_url.get_secret_value(), self.settings.database_pool_size
        )
        for attempt in range(1, 61):
            if await self._db.reachable():
                break
            log.warning("database not reachable yet", extra={"attempt": attempt})
            await asyncio.sleep(min(2.0, 0.1 * attempt))
        await self.broker.connect()  # retries until NATS answers
        await self.ensure_streams()

    async def ensure_streams(self) -> None:
        """Declare this service's event stream and the dead-letter stream."""
        for stream in (messaging.event_stream(self.name), messaging.dead_letter_stream()):
            await messaging.ensure_stream(self.broker, stream)

    async def _started(self) -> None:
        if self.settings.outbox_relay_enabled:
            self._relay = OutboxRelay(
                self.db,
                lambda subject, payload, headers: messaging.publish_raw(
                    self.broker, subject, payload, dict(headers)
                ),
                poll_seconds=self.settings.outbox_poll_seconds,
            )
            self._relay.start()
        await messaging.reconcile_consumers(self.broker)
        self._tasks = [
            asyncio.create_task(_forever(loop), name=loop_name(loop)) for loop in self._background
        ]
        log.info("service ready", extra={"instance": self.instance})

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._relay is not None:
            await self._relay.stop()
        if self._db is not None:
            await self._db.dispose()

    async def _ping(self, request: Ping) -> Pong:
        db_ok = await self.db.reachable()
        backlog = 0
        if db_ok and self._relay is not None:
            with contextlib.suppress(Exception):
                backlog = await self._relay.backlog()
        return Pong(
            service=self.name,
            instance=self.instance,
            version=VERSION,
            database=db_ok,
            outbox_backlog=backlog,
            counters=metrics.snapshot(),
        )


def _bound_rpc(
    handler: Callable[[Any, DepsT], Awaitable[T]], deps: DepsT
) -> Callable[[Any], Awaitable[T]]:
    async def bound(message: Any) -> T:
        return await handler(message, deps)

    return bound


def _bound_event(
    handler: Callable[[Any, DepsT, UnitOfWork], Awaitable[None]], deps: DepsT
) -> EventHandler[Any]:
    async def bound(event: Any, uow: UnitOfWork) -> None:
        await handler(event, deps, uow)

    return bound


def loop_name(loop: Callable[..., Any]) -> str:
    """A background loop's name for tasks and logs; a ``functools.partial`` is named by its
    function (it has no ``__name__`` of its own)."""
    named = getattr(loop, "func", loop)
    return str(getattr(named, "__name__", None) or "background")


async def _forever(loop: Callable[[], Awaitable[None]]) -> None:
    """Keep a background loop alive: log a crash and start it again after a pause."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background loop failed; restarting", extra={"loop": loop_name(loop)})
        await asyncio.sleep(5)


def main(
    name: str,
    settings_type: type[SettingsT],
    bootstrap: Callable[[SettingsT], ServiceRuntime] | str,
    service_dir: Path,
) -> None:
    """``python -m <service> [serve|migrate]``.

    ``bootstrap`` may be ``"module:function"``: it is imported only to serve, so ``migrate``
    does not pay for the service's adapters (provider clients, SDKs) at every start.
    """
    parser = argparse.ArgumentParser(prog=name, description=f"Cortex {name} service")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = settings_type()
    configure_logging(name, settings.log_level, settings.log_format)
    if args.command == "migrate":
        upgrade(service_dir, settings.database_url.get_secret_value())
        log.info("migrations applied")
        return
    if isinstance(bootstrap, str):
        module, _, function = bootstrap.partition(":")
        bootstrap = getattr(importlib.import_module(module), function)
    assert callable(bootstrap)
    runtime = bootstrap(settings)
    asyncio.run(runtime.app().run())
