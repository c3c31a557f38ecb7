"""Handing a booking request over to booking durably, when booking did not answer in time.

See :mod:`contracts.gateway`: the request goes into the gateway's own JetStream stream
(``GATEWAY_EVENTS``), de-duplicated by booking id, and booking settles it. Without that
hand-over the gateway cannot promise an outcome, so it answers 503 instead of 202.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from contracts import booking as msg
from contracts import gateway as gw
from contracts import subjects
from contracts.rpc import ErrorKind
from cortex_runtime import broker as messaging
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)


async def hand_over_booking(app: FastAPI, command: msg.CreateBooking) -> None:
    broker = app.state.broker
    try:
        if not getattr(app.state, "handover_stream_ready", False):
            await messaging.ensure_stream(broker, messaging.event_stream(subjects.GATEWAY))
            app.state.handover_stream_ready = True
        await messaging.publish_raw(
            broker,
            gw.BOOKING_UNANSWERED.subject,
            command.model_dump_json().encode(),
            {"Nats-Msg-Id": command.booking_id},
        )
    except Exception as exc:
        log.error(
            "could not hand an unanswered booking over",
            extra={"booking_id": command.booking_id, "error": repr(exc)[:300]},
        )
        raise ServiceError(
            ErrorKind.UNAVAILABLE,
            "booking_unconfirmed",
            "The booking service did not answer in time; retry with the same "
            "Idempotency-Key to learn the outcome.",
        ) from exc
