"""Messages of the booking service that change a booking after it was made: the owner's
reschedule, and the attendee's self-service through the manage link (read, reschedule,
cancel). Subjects are booking's (``booking.v1.cmd.*``, ``booking.v1.evt.*``)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final

from pydantic import Field

from contracts import subjects
from contracts.booking import BOOKING, BookingInfo, BookingReply, ChangedBy, Slot

__all__ = ["ChangedBy"]  # re-exported: who changed a booking
from contracts.envelope import Message
from contracts.rpc import EventSpec, Rpc

TOKEN_MAX = 200


class RescheduleBooking(Message):
    """Move one of the tenant's bookings to ``[start, end)``: the same booking, new times."""

    booking_id: str = Field(max_length=100)
    start: datetime
    end: datetime
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(
        default=None, max_length=128, description="The gateway's hash of the request body"
    )


class ManagedBooking(Message):
    """The attendee's booking, named by its manage link: page, booking id and token."""

    slug: str = Field(max_length=100)
    booking_id: str = Field(max_length=100)
    token: str = Field(max_length=TOKEN_MAX)


class RescheduleManagedBooking(ManagedBooking):
    start: datetime
    end: datetime
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=128)


class CancelManagedBooking(ManagedBooking):
    reason: str = Field(default="", max_length=500)


class BookingRescheduled(Message):
    """A booking moved: its times before (``old``) and now (``new``)."""

    booking: BookingInfo
    old: Slot
    new: Slot
    by: ChangedBy


RESCHEDULE_BOOKING: Final[Rpc[RescheduleBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "reschedule_booking"), RescheduleBooking, BookingReply,
    "Move one of the tenant's bookings to new times: the new slot held before the old is "
    "released, the calendar event moved in place",
)  # fmt: skip
GET_MANAGED_BOOKING: Final[Rpc[ManagedBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "get_managed_booking"), ManagedBooking, BookingReply,
    "The attendee's booking, by its manage link (404 for a wrong token)",
)  # fmt: skip
RESCHEDULE_MANAGED_BOOKING: Final[Rpc[RescheduleManagedBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "reschedule_managed_booking"), RescheduleManagedBooking,
    BookingReply, "The attendee moves their booking, by its manage link, under the owner's rules",
)  # fmt: skip
CANCEL_MANAGED_BOOKING: Final[Rpc[CancelManagedBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "cancel_managed_booking"), CancelManagedBooking, BookingReply,
    "The attendee cancels their booking, by its manage link, under the owner's rules",
)  # fmt: skip

BOOKING_RESCHEDULED: Final = EventSpec(
    subjects.event(BOOKING, "booking_rescheduled"), BookingRescheduled, "a booking was moved"
)

RPCS: Final = (
    RESCHEDULE_BOOKING, GET_MANAGED_BOOKING, RESCHEDULE_MANAGED_BOOKING, CANCEL_MANAGED_BOOKING,
)  # fmt: skip
EVENTS: Final = (BOOKING_RESCHEDULED,)


def manage_token_hash(token: str) -> str:
    """What booking stores of a manage-link token, and compares a presented one by: its
    SHA-256, hex (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()
