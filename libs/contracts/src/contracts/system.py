"""Messages every service answers: liveness and readiness."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from contracts import subjects
from contracts.envelope import Message
from contracts.rpc import Rpc


class Ping(Message):
    """Asks a service whether it is ready to serve."""


class Pong(Message):
    service: str
    instance: str = Field(description="Which replica answered (host:pid).")
    version: str
    database: bool = Field(description="Whether the service reached its database.")
    outbox_backlog: int = Field(default=0, ge=0, description="Events not yet relayed.")
    counters: dict[str, int] = Field(
        default_factory=dict, description="Process counters: dead_letters, redeliveries, ..."
    )


def _ping(service: str, subject: str) -> Rpc[Ping, Pong]:
    return Rpc(subject=subject, request=Ping, reply=Pong, summary=f"Readiness of {service}")


IDENTITY_PING: Final = _ping(subjects.IDENTITY, subjects.IDENTITY_PING)
BOOKING_PING: Final = _ping(subjects.BOOKING, subjects.BOOKING_PING)
CALENDARS_PING: Final = _ping(subjects.CALENDARS, subjects.CALENDARS_PING)
BILLING_PING: Final = _ping(subjects.BILLING, subjects.BILLING_PING)

PINGS: Final[dict[str, Rpc[Ping, Pong]]] = {
    subjects.IDENTITY: IDENTITY_PING,
    subjects.BOOKING: BOOKING_PING,
    subjects.CALENDARS: CALENDARS_PING,
    subjects.BILLING: BILLING_PING,
}
