"""The handler table: every calendars RPC is answered, once, and identity's owner events are
consumed (the zone projection, the tenant's deletion)."""

from __future__ import annotations

from collections import Counter

from calendars.entrypoints.handlers import HANDLERS
from contracts import calendars as msg
from contracts import identity
from cortex_runtime.handlers import EventRoute, RpcRoute


def test_every_calendars_rpc_has_one_handler() -> None:
    served = Counter(route.spec.subject for route in HANDLERS if isinstance(route, RpcRoute))
    assert served == Counter(rpc.subject for rpc in msg.RPCS)


def test_the_owner_events_are_consumed_once_each_in_the_inbox() -> None:
    consumed = Counter(route.spec.subject for route in HANDLERS if isinstance(route, EventRoute))
    wanted = [identity.TENANT_CREATED, identity.SETTINGS_CHANGED, identity.TENANT_DELETED]
    assert consumed == Counter(spec.subject for spec in wanted)
    assert all(isinstance(route, RpcRoute | EventRoute) for route in HANDLERS)
