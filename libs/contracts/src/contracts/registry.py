"""Every request/reply pair and every event, for documentation and schema snapshots."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from contracts import (
    billing,
    booking,
    booking_changes,
    calendars,
    gateway,
    identity,
    owners,
    policies,
    system,
)
from contracts.rpc import EventSpec, Rpc, RpcFailure

RPCS: tuple[Rpc[Any, Any], ...] = (
    *system.PINGS.values(),
    *identity.RPCS,
    *calendars.RPCS,
    *billing.RPCS,
    *booking.RPCS,
    *booking_changes.RPCS,
    *policies.RPCS,
    *owners.RPCS,
)
EVENTS: tuple[EventSpec[Any], ...] = (
    *identity.EVENTS,
    *calendars.EVENTS,
    *billing.EVENTS,
    *booking.EVENTS,
    *booking_changes.EVENTS,
    *policies.EVENTS,
    *gateway.EVENTS,
)


def all_models() -> dict[str, type[BaseModel]]:
    """Every message model by a stable name: ``<subject>:request|reply|error`` or ``<subject>``."""
    models: dict[str, type[BaseModel]] = {}
    for rpc in RPCS:
        models[f"{rpc.subject}:request"] = rpc.request
        models[f"{rpc.subject}:reply"] = rpc.reply
        models[f"{rpc.subject}:error"] = RpcFailure
    for spec in EVENTS:
        models[spec.subject] = spec.model
    return models
