"""The API-call counters the gateways keep in the JetStream counter stream.

Each gateway adds to ``usage.calls.<tenant>.<YYYYMMDD>`` (``Nats-Incr``); the stream keeps
one message per subject whose body is the running total, ``{"val": "<n>"}``. Billing only
reads: a direct get of each day's last message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date
from typing import Any

from faststream.nats import NatsBroker
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from contracts import billing as msg

log = logging.getLogger(__name__)


def usage_stream() -> StreamConfig:
    return StreamConfig(storage=StorageType.FILE, **msg.usage_stream_config())  # type: ignore[arg-type]


async def ensure_usage_stream(js: Any) -> None:
    """Declare the counter stream (the gateways declare the same one)."""
    config = usage_stream()
    try:
        await js.add_stream(config=config)
    except BadRequestError:
        await js.update_stream(config=config)


def total_of(data: bytes) -> int:
    """The total in a counter message's body."""
    try:
        return int(json.loads(data)["val"])
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable usage counter", extra={"body": data[:100].decode(errors="replace")})
        return 0


def jetstream(broker: NatsBroker) -> Any:
    """The JetStream context of a connected FastStream broker."""
    return broker.config.connection_state.stream


class CallCounters:
    """Reads per-day call totals; a day nobody called on has no message and counts 0."""

    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker

    async def calls(self, tenant_id: str, days: list[date]) -> dict[date, int]:
        async def one(day: date) -> int:
            try:
                message = await jetstream(self._broker).get_last_msg(
                    msg.USAGE_STREAM, msg.calls_counter_subject(tenant_id, day), direct=True
                )
            except NotFoundError:
                return 0
            return total_of(message.data or b"")

        totals = await asyncio.gather(*(one(day) for day in days))
        return dict(zip(days, totals, strict=True))
