"""NATS wiring shared by every service: the broker, streams, request/reply, consumers.

* :func:`build_broker` makes a ``NatsBroker`` that reconnects forever and turns any
  handler failure into an :class:`~contracts.rpc.RpcFailure` reply.
* :func:`serve_rpc` registers a typed request/reply handler in the owner's queue group.
* :func:`consume_event` registers a durable JetStream pull consumer with explicit
  ``ack_wait``, the consumer's :class:`Delivery` policy (bounded redelivery with capped
  backoff, outages waited out) and a dead-letter path.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import asyncpg
import sqlalchemy.exc
from faststream import AckPolicy, ExceptionMiddleware
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsResponse, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from pydantic import ValidationError

from contracts import subjects
from contracts.envelope import Message
from contracts.rpc import (
    STATUS_ERROR,
    STATUS_HEADER,
    ErrorKind,
    ErrorReply,
    EventSpec,
    Rpc,
    RpcFailure,
)
from cortex_runtime import metrics
from cortex_runtime.errors import ServiceError
from cortex_runtime.logs import correlated

log = logging.getLogger(__name__)

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT", bound=Message)
EvtT = TypeVar("EvtT", bound=Message)

EVENT_MAX_AGE_SECONDS = 7 * 24 * 3600
DUPLICATE_WINDOW_SECONDS = 15 * 60


def failure_response(error: ErrorReply) -> NatsResponse:
    body = RpcFailure(error=error).model_dump(mode="json")
    return NatsResponse(body, headers={STATUS_HEADER: STATUS_ERROR})


def _exception_replies() -> ExceptionMiddleware:
    replies = ExceptionMiddleware()

    @replies.add_handler(ServiceError, publish=True)
    async def on_service_error(exc: ServiceError) -> NatsResponse:
        return failure_response(exc.reply)

    @replies.add_handler(ValidationError, publish=True)
    async def on_invalid(exc: ValidationError) -> NatsResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        error = ErrorReply(kind=ErrorKind.INVALID, code="invalid_message", message=problems)
        return failure_response(error)

    @replies.add_handler(Exception, publish=True)
    async def on_crash(exc: Exception) -> NatsResponse:
        if unreachable(exc):  # the database is restarting or gone: retryable, not a bug
            log.warning("a dependency is unreachable", exc_info=exc)
            metrics.increment("dependency_unreachable")
            error = ErrorReply(
                kind=ErrorKind.UNAVAILABLE,
                code="dependency_unavailable",
                message="The service cannot reach its database right now; try again shortly.",
            )
            return failure_response(error)
        log.error("handler failed", exc_info=exc)
        metrics.increment("handler_crashes")
        error = ErrorReply(
            kind=ErrorKind.INTERNAL, code="internal_error", message="The service failed to answer."
        )
        return failure_response(error)

    return replies


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a connection that failed or was cut: a
    refused or reset socket, PostgreSQL shutting down or not accepting connections yet."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return False
        if isinstance(
            current,
            OSError
            | asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.AdminShutdownError
            | asyncpg.exceptions.CannotConnectNowError
            | asyncpg.exceptions.CrashShutdownError,
        ):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def build_broker(servers: str, name: str, **callbacks: Any) -> NatsBroker:
    """A broker that keeps reconnecting through NATS restarts."""
    return NatsBroker(
        [s.strip() for s in servers.split(",") if s.strip()],
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        middlewares=[_exception_replies()],
        graceful_timeout=10.0,
        # FastStream's "Received"/"Processed" lines for every message are noise: DEBUG
        log_level=logging.DEBUG,
        **callbacks,
    )


def event_stream(owner: str, replicas: int = 1) -> JStream:
    """The one stream of an owner's events; every declaration of it is identical."""
    return JStream(
        name=subjects.stream_name(owner),
        subjects=[subjects.events_wildcard(owner)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=EVENT_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
        discard=DiscardPolicy.OLD,
    )


async def declare_stream(broker: NatsBroker, config: StreamConfig) -> None:
    """Create the stream on the server, or bring its configuration up to date."""
    js = broker.config.connection_state.stream
    try:
        await js.add_stream(config=config)
    except BadRequestError:
        await js.update_stream(config=config)


async def ensure_stream(broker: NatsBroker, stream: JStream) -> None:
    """Declare a stream FastStream describes (its subjects live apart from its config)."""
    await declare_stream(broker, replace(stream.config, subjects=list(stream.subjects)))


def dead_letter_stream(replicas: int = 1) -> JStream:
    return JStream(
        name=subjects.DEAD_LETTER_STREAM,
        subjects=[subjects.DEAD_LETTER_WILDCARD],
        storage=StorageType.FILE,
        max_age=30 * 24 * 3600,
        num_replicas=replicas,
    )


def _signature(fn: Callable[..., Any], params: dict[str, Any], returns: Any) -> None:
    """Give a wrapper the typed signature FastStream validates and documents."""
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation)
            for name, annotation in params.items()
        ],
        return_annotation=returns,
    )
    fn.__annotations__ = {**params, "return": returns}


def serve_rpc(
    broker: NatsBroker,
    rpc: Rpc[ReqT, RepT],
    handler: Callable[[ReqT], Awaitable[RepT]],
    *,
    concurrency: int = 32,
) -> None:
    """Answer ``rpc`` with ``handler``; replicas share requests through the owner's queue group.

    Up to ``concurrency`` requests run at once in this process. (A plain NATS subscription
    runs its callback for one message at a time: one slow request, a saga waiting on a
    participant, would hold every other request to the same subject behind it.)
    """

    async def answer(body: ReqT) -> RepT:
        with correlated(body.correlation_id):
            reply = await handler(body)
        # the reply continues the request's trace
        return reply.model_copy(update=body.caused())

    _signature(answer, {"body": rpc.request}, rpc.reply)
    answer.__name__ = rpc.subject.replace(".", "_")
    broker.subscriber(
        rpc.subject,
        queue=subjects.queue_group(rpc.owner),
        max_workers=concurrency,
        title=rpc.subject,
        description=rpc.summary,
    )(answer)


def backoff_seconds(delivery: int, longest: float = 30.0) -> float:
    """Delay before redelivery after the ``delivery``-th failed attempt: doubling from
    0.25 s, never more than ``longest`` (whatever the count: an outage may last long)."""
    return float(min(longest, 0.25 * 2 ** min(max(delivery - 1, 0), 16)))


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a consumer's failed deliveries are retried; each consumer declares its own.

    A failed delivery is retried after a pause that doubles from 0.25 s up to
    ``max_backoff_seconds``. A failure because a dependency cannot be reached (the
    database restarting or gone, see :func:`unreachable`) is an outage, not a fault of the
    message: with ``outlast_outages`` it is retried for as long as the outage lasts and is
    never dead-lettered. Any other failure is dead-lettered once the message has been
    delivered ``max_deliver`` times (outage deliveries count, so after a long outage the
    first other failure dead-letters it); a malformed message is dead-lettered at once.
    """

    max_deliver: int = 5
    max_backoff_seconds: float = 30.0
    outlast_outages: bool = True

    @property
    def server_max_deliver(self) -> int:
        """The server's own limit, only a backstop (-1: none, the consumer decides)."""
        return -1 if self.outlast_outages else self.max_deliver + 1


# the durable consumers each broker declared, for :func:`reconcile_consumers`
_declared: weakref.WeakKeyDictionary[NatsBroker, dict[tuple[str, str], Delivery]] = (
    weakref.WeakKeyDictionary()
)


def consume_event(
    broker: NatsBroker,
    spec: EventSpec[EvtT],
    consumer: str,
    handler: Callable[[EvtT], Awaitable[None]],
    *,
    ack_wait: float = 30.0,
    delivery: Delivery = Delivery(),
    concurrency: int = 8,
) -> str:
    """Handle ``spec`` events in a durable pull consumer ``<consumer>__<event>``.

    The handler must be idempotent (use :meth:`UnitOfWork.first_delivery`). A failure is
    redelivered after a growing delay as ``delivery`` says; a message it gives up on goes
    to ``deadletter.<consumer>.<durable>`` in the DEAD_LETTERS stream, is logged and
    counted, and is terminated so it is never retried again. Returns the durable name.
    """
    durable = subjects.durable_name(consumer, spec.subject)
    stream = event_stream(spec.owner)
    _declared.setdefault(broker, {})[(stream.name, durable)] = delivery

    async def handle(msg: NatsMessage) -> None:
        number = msg.raw_message.metadata.num_delivered
        try:
            body = spec.model.model_validate_json(msg.body)
        except ValidationError as exc:
            # a malformed event will never succeed: straight to the dead letters
            await _dead_letter(broker, consumer, durable, msg, exc, number)
            await msg.reject()
            return
        with correlated(body.correlation_id):
            try:
                await handler(body)
            except Exception as exc:
                outage = delivery.outlast_outages and unreachable(exc)
                if not outage and number >= delivery.max_deliver:
                    await _dead_letter(broker, consumer, durable, msg, exc, number)
                    await msg.reject()
                    return
                log.warning(
                    "a dependency is unreachable; will redeliver"
                    if outage
                    else "event handler failed; will redeliver",
                    extra={
                        "durable": durable,
                        "event_id": body.message_id,
                        "delivery": number,
                        "error": repr(exc),
                    },
                )
                metrics.increment("event_redeliveries")
                await msg.nack(delay=backoff_seconds(number, delivery.max_backoff_seconds))
                return
        await msg.ack()

    _signature(handle, {"msg": NatsMessage}, None)
    handle.__name__ = durable
    broker.subscriber(
        spec.subject,
        stream=stream,
        durable=durable,
        pull_sub=PullSub(batch_size=32, timeout=1.0),
        config=ConsumerConfig(
            ack_wait=ack_wait,
            max_deliver=delivery.server_max_deliver,
            max_ack_pending=1000,
        ),
        ack_policy=AckPolicy.MANUAL,
        max_workers=concurrency,
        title=durable,
        description=f"{consumer} handles {spec.summary}",
    )(handle)
    return durable


async def reconcile_consumers(broker: NatsBroker) -> None:
    """Bring the server's delivery limit of every durable this broker declared up to date.

    A durable consumer keeps the configuration it was created with: one made before its
    :class:`Delivery` changed (an upgrade) would still stop redelivering at the old limit.
    Call it once the subscribers are started."""
    js = broker.config.connection_state.stream
    for (stream, durable), delivery in list(_declared.get(broker, {}).items()):
        try:
            info = await js.consumer_info(stream, durable)
            if info.config.max_deliver != delivery.server_max_deliver:
                await js.add_consumer(
                    stream, config=replace(info.config, max_deliver=delivery.server_max_deliver)
                )
                log.info(
                    "consumer delivery limit updated",
                    extra={"durable": durable, "max_deliver": delivery.server_max_deliver},
                )
        except Exception as exc:  # the next start tries again; delivery goes on meanwhile
            log.warning(
                "could not check a consumer's delivery limit",
                extra={"durable": durable, "error": repr(exc)},
            )


async def _dead_letter(
    broker: NatsBroker,
    consumer: str,
    durable: str,
    msg: NatsMessage,
    exc: Exception,
    delivery: int,
) -> None:
    headers = {
        "Cortex-Original-Subject": msg.raw_message.subject,
        "Cortex-Consumer": durable,
        "Cortex-Deliveries": str(delivery),
        "Cortex-Error": repr(exc)[:500],
        "Nats-Msg-Id": f"{durable}:{msg.raw_message.metadata.sequence.stream}",
    }
    await broker.publish(
        msg.raw_message.data,
        subjects.dead_letter(consumer, durable),
        headers=headers,
        stream=subjects.DEAD_LETTER_STREAM,
    )
    metrics.increment("dead_letters")
    log.error(
        "event dead-lettered after %d deliveries",
        delivery,
        extra={"durable": durable, "subject": msg.raw_message.subject, "error": repr(exc)},
    )


async def publish_raw(
    broker: NatsBroker, subject: str, payload: bytes, headers: dict[str, str]
) -> None:
    """Publish to JetStream and wait for the stream's acknowledgement."""
    owner = subject.split(".", 1)[0]
    await broker.publish(payload, subject, headers=headers, stream=subjects.stream_name(owner))


def is_connected(broker: NatsBroker) -> bool:
    """Whether the broker holds a live NATS connection right now."""
    state = broker.config.connection_state
    return bool(state) and state.connection.is_connected
