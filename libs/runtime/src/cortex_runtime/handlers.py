"""One table of a service's handlers, and the one way handlers are called.

Every handler takes the message and the service's typed dependencies (``<Service>Deps``):

- an RPC handler is ``async (cmd, deps) -> reply``;
- an event handler is ``async (event, deps, uow) -> None``: ``uow`` is the unit of work whose
  inbox row (durable name, event id) commits with the handler's writes, so an event is
  handled once in effect (:meth:`~cortex_runtime.service.ServiceRuntime.consumer`);
- a handler of an event that is idempotent by itself (no inbox) is ``async (event, deps)``.

A service declares them once, in its ``entrypoints/handlers.py``::

    HANDLERS: Final = (
        rpc(msg.GET_AVAILABILITY, availability.get_availability),
        event(ident.SETTINGS_CHANGED, projection.on_settings_changed),
    )

and its bootstrap registers the table with ``runtime.register(HANDLERS, deps)``. The
helpers are typed: a handler whose message or reply does not match its spec fails mypy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from contracts.envelope import Message
from contracts.rpc import EventSpec, Rpc
from cortex_runtime.broker import Delivery
from cortex_runtime.database import UnitOfWork

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT", bound=Message)
EvtT = TypeVar("EvtT", bound=Message)
DepsT = TypeVar("DepsT")
DepsC_contra = TypeVar("DepsC_contra", contravariant=True)

RpcHandler = Callable[[ReqT, DepsT], Awaitable[RepT]]
EventHandler = Callable[[EvtT, DepsT, UnitOfWork], Awaitable[None]]
PlainEventHandler = Callable[[EvtT, DepsT], Awaitable[None]]


@dataclass(frozen=True)
class RpcRoute(Generic[DepsC_contra]):
    """Answer ``spec`` with ``handler``."""

    spec: Rpc[Any, Any]
    handler: Callable[[Any, DepsC_contra], Awaitable[Any]]


@dataclass(frozen=True)
class EventRoute(Generic[DepsC_contra]):
    """Handle ``spec`` events with ``handler`` in the inbox's unit of work."""

    spec: EventSpec[Any]
    handler: Callable[[Any, DepsC_contra, UnitOfWork], Awaitable[None]]
    delivery: Delivery | None = None


@dataclass(frozen=True)
class PlainEventRoute(Generic[DepsC_contra]):
    """Handle ``spec`` events with ``handler``, which is idempotent by itself (no inbox);
    ``ack_wait`` and ``delivery`` default to the service's."""

    spec: EventSpec[Any]
    handler: Callable[[Any, DepsC_contra], Awaitable[None]]
    ack_wait: float | None = None
    delivery: Delivery | None = None


Route = RpcRoute[DepsC_contra] | EventRoute[DepsC_contra] | PlainEventRoute[DepsC_contra]


def rpc(spec: Rpc[ReqT, RepT], handler: RpcHandler[ReqT, DepsT, RepT]) -> RpcRoute[DepsT]:
    return RpcRoute(spec, handler)


def event(
    spec: EventSpec[EvtT],
    handler: EventHandler[EvtT, DepsT],
    *,
    delivery: Delivery | None = None,
) -> EventRoute[DepsT]:
    return EventRoute(spec, handler, delivery)


def plain_event(
    spec: EventSpec[EvtT],
    handler: PlainEventHandler[EvtT, DepsT],
    *,
    ack_wait: float | None = None,
    delivery: Delivery | None = None,
) -> PlainEventRoute[DepsT]:
    return PlainEventRoute(spec, handler, ack_wait, delivery)
