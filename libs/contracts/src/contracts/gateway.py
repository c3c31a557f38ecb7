"""What the gateway itself publishes: requests it accepted without hearing back.

The gateway answers a booking 202 when booking does not reply in time. NATS request/reply
delivers at most once, so the request may never have reached booking (a replica killed
before it held the slot) or may have been refused there after the gateway stopped waiting.
The gateway therefore hands the request over in its own stream; booking settles it: nothing
to do when the booking exists, else it runs the request again (idempotent by
``booking_id``) and records a refusal as a failed booking, so every 202's status URL ends
with an answer.
"""

from __future__ import annotations

from typing import Final

from contracts import subjects
from contracts.booking import CreateBooking
from contracts.rpc import EventSpec

BOOKING_UNANSWERED: Final = EventSpec(
    subjects.event(subjects.GATEWAY, "booking_unanswered"),
    CreateBooking,
    "a booking request the gateway answered 202 without a reply from booking",
)

EVENTS: Final = (BOOKING_UNANSWERED,)
