"""The relay that moves committed outbox rows to JetStream.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so any number of replicas relay
side by side; each is published with ``Nats-Msg-Id`` = its message id (JetStream drops
a re-send inside the duplicate window, and consumers' inboxes drop it after) and only
then marked published. A crash or a NATS outage leaves rows unpublished; the next
pass, here or in another replica, sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

import sqlalchemy as sa

from cortex_runtime import metrics
from cortex_runtime.database import Database
from cortex_runtime.tables import inbox, outbox

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, Mapping[str, str]], Awaitable[None]]

_MAX_BACKOFF = 10.0


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publish: Publish,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
        retention: timedelta = timedelta(days=3),
    ) -> None:
        self._db = db
        self._publish = publish
        self._poll = poll_seconds
        self._batch = batch_size
        self._retention = retention
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Called after a commit that wrote events: relay now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def backlog(self) -> int:
        async with self._db.engine.connect() as conn:
            result = await conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.published_at.is_(None))
            )
            return int(result.scalar_one())

    async def relay_once(self) -> int:
        """Publish one batch of unpublished rows; returns how many were published."""
        async with self._db.engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        outbox.c.message_id, outbox.c.subject, outbox.c.payload, outbox.c.headers
                    )
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.created_at)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            await asyncio.gather(
                *(
                    self._publish(
                        row.subject, row.payload, {**row.headers, "Nats-Msg-Id": row.message_id}
                    )
                    for row in rows
                )
            )
            await conn.execute(
                sa.update(outbox)
                .where(outbox.c.message_id.in_([row.message_id for row in rows]))
                .values(published_at=sa.func.now(), attempts=outbox.c.attempts + 1)
            )
        metrics.increment("outbox_published", len(rows))
        return len(rows)

    async def purge(self) -> None:
        """Forget published rows and handled-message ids older than the retention."""
        cutoff = sa.func.now() - self._retention
        async with self._db.engine.begin() as conn:
            await conn.execute(
                sa.delete(outbox).where(
                    outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff
                )
            )
            await conn.execute(sa.delete(inbox).where(inbox.c.handled_at < cutoff))

    async def _run(self) -> None:
        failures = 0
        passes = 0
        while True:
            try:
                published = await self.relay_once()
                failures = 0
                passes += 1
                if passes % 3600 == 1:
                    await self.purge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = min(_MAX_BACKOFF, 0.2 * 2**failures)
                metrics.increment("outbox_relay_errors")
                log.warning(
                    "outbox relay failed; retrying",
                    extra={"error": repr(exc), "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                continue
            if published:
                continue  # more may be waiting
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
