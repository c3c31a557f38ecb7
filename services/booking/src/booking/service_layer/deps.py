"""What every booking handler is given: :class:`BookingDeps`, built once by the bootstrap.

Handlers are ``(cmd, deps)`` (RPCs, and the hand-over of unanswered requests) or
``(event, deps, uow)`` (events, in the inbox's unit of work); the table in
``booking.entrypoints.handlers`` says which handler answers what.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from booking.adapters.free_busy_cache import FreeBusyCache
from contracts.envelope import Message
from contracts.rpc import Rpc
from cortex_runtime.database import UnitOfWork

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT", bound=Message)


class Participants(Protocol):
    """How the saga calls calendars and billing (``cortex_runtime.client.RpcClient``; a
    test's fake participants): the reply, or the participant's ``ServiceError``
    (``ServiceUnavailable`` when it does not answer within ``timeout``)."""

    async def call(
        self, rpc: Rpc[ReqT, RepT], request: ReqT, timeout: float | None = None
    ) -> RepT: ...


@dataclass(frozen=True, kw_only=True)
class BookingDeps:
    uow: Callable[[], UnitOfWork]  # a transaction
    rpc: Participants
    hold: timedelta  # an unfinished saga untouched this long is recovery's
    pending_expiry: timedelta  # how long a pending booking waits for the owner
    participant_timeout: float  # seconds the saga waits for calendars and billing
    # reads outside any transaction (autocommit); the write unit of work when not given
    read: Callable[[], UnitOfWork] | None = None
    # availability's calendars answers (never the saga's live check)
    free_busy_cache: FreeBusyCache | None = None

    def reader(self) -> UnitOfWork:
        return (self.read or self.uow)()

    def deadline(self) -> datetime:
        """The deadline of a participant command sent now: the moment the saga stops
        waiting for its answer (and undoes or retries the step), never later than the
        moment recovery may take the saga over (``hold`` after its last step). The
        participant refuses the command past it, so nothing it does comes after the saga
        gave up on it."""
        return datetime.now(UTC) + min(timedelta(seconds=self.participant_timeout), self.hold)
