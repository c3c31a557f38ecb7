"""The handler table: every identity RPC is answered, once, and the feed's events consumed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from contracts import booking_changes as booking
from contracts import calendars as cal
from contracts import identity as msg
from contracts.rpc import EventSpec
from cortex_runtime.handlers import EventRoute, RpcRoute
from identity.entrypoints.handlers import HANDLERS


def test_every_identity_rpc_has_one_handler() -> None:
    served = Counter(route.spec.subject for route in HANDLERS if isinstance(route, RpcRoute))
    assert served == Counter(rpc.subject for rpc in msg.RPCS)


def test_the_activity_feed_consumes_each_event_it_shows_once() -> None:
    consumed = Counter(route.spec.subject for route in HANDLERS if isinstance(route, EventRoute))
    wanted: list[EventSpec[Any]] = [
        msg.TENANT_CREATED,
        msg.SETTINGS_CHANGED,
        msg.API_KEY_CREATED,
        msg.API_KEY_REVOKED,
        cal.CALENDAR_CONNECTED,
        cal.CALENDAR_DISCONNECTED,
        cal.CALENDAR_SYNC_FAILED,
        cal.CALENDAR_EXPIRED,
        booking.BOOKING_RESCHEDULED,
    ]
    assert consumed == Counter(spec.subject for spec in wanted)
