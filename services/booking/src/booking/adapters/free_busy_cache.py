"""The calendars' free/busy answers that availability reads, kept for a few seconds.

Availability reads the calendars service's synced copy (``live=False``) on every request;
the same owner's day is asked for again and again. This cache keeps those answers per tenant
and range, and forgets a tenant's answers as soon as the calendars service announces any
change for it (every replica listens to the calendars' events on core NATS, not through a
shared durable consumer, so each one hears them all), and in any case after ``ttl_seconds``.

What it never does: take part in a booking decision. The saga asks the calendars live and
the database's exclusion constraint decides; this service's own bookings and holds are not
cached at all (availability reads them from the database on every request).

An answer is also kept under the owner's ``calendars_version`` (booking's owners row, read by
availability on every request): a change of the owner's calendars that a door answered bumps
it in the database, so no replica serves an answer filled before the change, even before the
calendars' event reaches it (read-your-writes).

A fill that raced with an invalidation is dropped: each tenant has a generation, bumped by
every invalidation, and an answer is stored only if the generation it was asked under is
still current.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg

from contracts import calendars as cal
from contracts import subjects

log = logging.getLogger(__name__)

Key = tuple[str, int, datetime, datetime]  # tenant, calendars version, range


class FreeBusyCache:
    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: dict[Key, tuple[float, cal.FreeBusy]] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0  # bumped by forgetting everything

    def generation(self, tenant_id: str) -> tuple[int, int]:
        return self._epoch, self._generations.get(tenant_id, 0)

    def get(
        self, tenant_id: str, start: datetime, end: datetime, version: int = 0
    ) -> cal.FreeBusy | None:
        key = (tenant_id, version, start, end)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return value

    def put(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        value: cal.FreeBusy,
        generation: tuple[int, int],
        version: int = 0,
    ) -> None:
        if self._ttl <= 0 or generation != self.generation(tenant_id):
            return  # an invalidation happened while the answer was on its way
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[(tenant_id, version, start, end)] = (self._clock() + self._ttl, value)

    def forget(self, tenant_id: str | None = None) -> None:
        """Drop one tenant's answers, or every answer (``None``)."""
        if tenant_id is None:
            self._epoch += 1
            self._entries.clear()
            return
        self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1
        for key in [k for k in self._entries if k[0] == tenant_id]:
            del self._entries[key]


async def forget_on_calendar_changes(connection: Client, cache: FreeBusyCache) -> None:
    """Drop a tenant's cached answers whenever the calendars service announces anything
    about it, until cancelled. Every replica hears every calendars event (core NATS, no
    queue group); whatever was cached before it listened is dropped once it does."""

    async def on_event(message: Msg) -> None:
        try:
            tenant_id = json.loads(message.data).get("tenant_id")
        except (ValueError, AttributeError):
            tenant_id = None
        cache.forget(tenant_id if isinstance(tenant_id, str) else None)

    subscription = await connection.subscribe(
        subjects.events_wildcard(subjects.CALENDARS), cb=on_event
    )
    cache.forget()  # whatever was cached before listening
    try:
        await asyncio.Event().wait()
    finally:
        try:
            await subscription.unsubscribe()
        except Exception as exc:  # closing: nothing left to clean up
            log.debug("free/busy listener: %r", exc)
