"""Messages of the booking service: availability, the booking saga, the booking lifecycle."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import subjects
from contracts.envelope import Message
from contracts.rpc import EventSpec, Rpc

BOOKING = subjects.BOOKING


class BookingStatus(StrEnum):
    HELD = "held"  # the saga is running
    PENDING = "pending"  # waits for the owner; holds the slot
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # a pending booking nobody confirmed in time
    FAILED = "failed"  # the saga compensated


ACTIVE_STATUSES: Final = (BookingStatus.HELD, BookingStatus.PENDING, BookingStatus.CONFIRMED)

# The calendar booking works in: availability dates from FIRST_DAY to LAST_DAY, booking
# times (and time filters) from EARLIEST to before LATEST. Far inside what dates and times
# can hold (Python's end at 9999-12-31), so a day's bounds in any zone, buffers and notice
# never overflow; the gateway refuses anything outside with a 400.
FIRST_DAY: Final = date(1970, 1, 1)
LAST_DAY: Final = date(9998, 12, 31)
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 1, 1, tzinfo=UTC)


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Slot(Value):
    start: datetime
    end: datetime


class CalendarEventRef(Value):
    provider: str
    calendar_id: str
    uid: str


class ChangedBy(StrEnum):
    OWNER = "owner"
    ATTENDEE = "attendee"


class TimesChanged(Value):
    """One reschedule of a booking: the times it had before it, when, by whom."""

    start: datetime
    end: datetime
    changed_at: datetime
    by: ChangedBy


class BookingInfo(Value):
    booking_id: str
    slug: str
    status: BookingStatus
    start: datetime
    end: datetime
    title: str
    description: str
    attendee_email: str
    attendee_name: str
    calendar_event: CalendarEventRef | None
    reason: str | None = Field(default=None, description="Why it failed, was declined or denied")
    created_at: datetime
    history: list[TimesChanged] = Field(
        default_factory=list, description="Its previous times, oldest reschedule first"
    )


# --- requests and replies ------------------------------------------------------------------


class GetAvailability(Message):
    slug: str = Field(max_length=100)
    day: date
    duration_minutes: int | None = Field(default=None, ge=5, le=720)
    timezone: str | None = Field(default=None, max_length=100)
    last_day: date | None = Field(
        default=None,
        description="The free windows of every date day..last_day (inclusive, at most "
        "MAX_RANGE_DAYS), in one list; none: day alone",
    )


class Availability(Message):
    slug: str
    day: date
    timezone: str
    duration_minutes: int
    slots: list[Slot]
    last_day: date | None = Field(default=None, description="As asked: the range's last date")


MAX_RANGE_DAYS: Final = 31
"""The most dates one owner availability request covers."""


class GetOwnerAvailability(Message):
    """The tenant's own free windows on each date ``first_day``..``last_day`` (inclusive, at
    most ``MAX_RANGE_DAYS``): the same rules and busy time as their public page, whether
    the page is open or not."""

    first_day: date
    last_day: date
    duration_minutes: int | None = Field(default=None, ge=5, le=720)
    timezone: str | None = Field(default=None, max_length=100)
    explain: bool = Field(
        default=False,
        description="Also say why the rest of each day is not bookable (DaySlots.busy)",
    )


# --- why time is busy (explain): one reason model per kind ---------------------------------


class OutsideWorkingHours(Value):
    kind: Literal["outside_working_hours"] = "outside_working_hours"


class MinNotice(Value):
    kind: Literal["min_notice"] = "min_notice"
    hours: int = Field(description="The owner's minimum notice")
    earliest: datetime = Field(description="The first bookable instant (now + notice)")


class MaxAdvance(Value):
    kind: Literal["max_advance"] = "max_advance"
    days: int = Field(description="How many days ahead the owner takes bookings")
    latest: datetime = Field(description="Bookable time ends here (now + days)")


class CalendarEventBusy(Value):
    """An event of one of the owner's calendars (those counting for availability)."""

    kind: Literal["calendar_event"] = "calendar_event"
    start: datetime
    end: datetime
    calendar_id: str
    calendar_name: str
    summary: str
    booking_id: str | None = Field(
        default=None, description="The booking Cortex wrote this event for"
    )


class BookingBusy(Value):
    """One of the owner's own active bookings."""

    kind: Literal["booking"] = "booking"
    booking_id: str
    status: BookingStatus
    start: datetime
    end: datetime


class UnknownBusy(Value):
    """A calendar source that could not be read (in error, or its access expired): its
    time counts as busy. Without a source: the calendars said the time was unknown."""

    kind: Literal["unknown"] = "unknown"
    connection_id: str | None = None
    provider: str | None = None
    calendar_id: str | None = None
    status: str | None = Field(default=None, description="error, expired, ...")
    reason: str | None = None


BusySource = Annotated[CalendarEventBusy | BookingBusy | UnknownBusy, Field(discriminator="kind")]


class BufferBusy(Value):
    """The owner's buffer after (``after``) or before (``before``) something busy."""

    kind: Literal["buffer"] = "buffer"
    minutes: int
    after: BusySource | None = None
    before: BusySource | None = None


class TooShort(Value):
    """Free time, but in a free stretch shorter than the duration asked for."""

    kind: Literal["too_short"] = "too_short"
    free_minutes: int = Field(description="The free stretch's length (whole minutes, down)")
    duration_minutes: int


BusyReason = Annotated[
    OutsideWorkingHours | MinNotice | MaxAdvance | CalendarEventBusy | BookingBusy
    | UnknownBusy | BufferBusy | TooShort,
    Field(discriminator="kind"),
]  # fmt: skip


class BusyBlock(Value):
    start: datetime
    end: datetime
    reasons: list[BusyReason] = Field(description="Every reason that holds all through it")


class DaySlots(Value):
    day: date
    slots: list[Slot]
    busy: list[BusyBlock] | None = Field(
        default=None,
        description="With explain: the rest of the day (slots and busy partition it, "
        "local midnight to midnight), each block with its reasons",
    )


class OwnerAvailability(Message):
    timezone: str
    duration_minutes: int
    days: list[DaySlots] = Field(description="One entry per date, in order")


class CreateBooking(Message):
    """Book on a public page. The gateway chooses ``booking_id`` so it can answer 202."""

    booking_id: str = Field(pattern=r"^bk_[a-z0-9]{20}$")
    slug: str = Field(max_length=100)
    title: str = Field(min_length=1, max_length=200)
    start: datetime
    end: datetime
    attendee_email: str = Field(max_length=320)
    attendee_name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=5000)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=128)
    page_tenant_id: str | None = Field(
        default=None,
        max_length=100,
        description="The page's owner when the gateway derived booking_id from the "
        "Idempotency-Key (get_page); booking refuses the request (page_changed) if the page "
        "has another owner now",
    )
    manage_token_hash: str | None = Field(
        default=None,
        max_length=128,
        description="SHA-256 (hex) of the attendee's manage-link token (the gateway derives "
        "the token); booking stores only this hash",
    )


class GetPage(Message):
    """Who owns a public page now (the gateway scopes an Idempotency-Key by it)."""

    slug: str = Field(max_length=100)


class Page(Message):
    slug: str
    page_tenant_id: str = Field(description="The tenant whose page it is")


class BookingReply(Message):
    booking: BookingInfo
    replayed: bool = Field(default=False, description="An Idempotency-Key retry: the first answer")


class GetPublicBooking(Message):
    slug: str = Field(max_length=100)
    booking_id: str = Field(max_length=100)


class GetBooking(Message):
    booking_id: str = Field(max_length=100)


class ListBookings(Message):
    status: BookingStatus | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class BookingList(Message):
    bookings: list[BookingInfo]
    next_cursor: str | None


class ChangeBooking(Message):
    """Confirm, decline or cancel one of the tenant's bookings."""

    booking_id: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)


# --- events ----------------------------------------------------------------------------------


class BookingEvent(Message):
    booking: BookingInfo


GET_AVAILABILITY: Final[Rpc[GetAvailability, Availability]] = Rpc(
    subjects.command(BOOKING, "get_availability"), GetAvailability, Availability,
    "Free windows of a public page on a date",
)  # fmt: skip
GET_OWNER_AVAILABILITY: Final[Rpc[GetOwnerAvailability, OwnerAvailability]] = Rpc(
    subjects.command(BOOKING, "get_owner_availability"), GetOwnerAvailability,
    OwnerAvailability, "The tenant's own free windows on a range of dates",
)  # fmt: skip
CREATE_BOOKING: Final[Rpc[CreateBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "create_booking"), CreateBooking, BookingReply,
    "Run the booking saga: hold, check the calendars, reserve quota, write the event, confirm",
)  # fmt: skip
GET_PAGE: Final[Rpc[GetPage, Page]] = Rpc(
    subjects.command(BOOKING, "get_page"), GetPage, Page,
    "The owner of an open public page (404 page_not_found otherwise)",
)  # fmt: skip
GET_PUBLIC_BOOKING: Final[Rpc[GetPublicBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "get_public_booking"), GetPublicBooking, BookingReply,
    "The status of a booking made on a public page",
)  # fmt: skip
GET_BOOKING: Final[Rpc[GetBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "get_booking"),
    GetBooking,
    BookingReply,
    "One of the tenant's bookings",
)
LIST_BOOKINGS: Final[Rpc[ListBookings, BookingList]] = Rpc(
    subjects.command(BOOKING, "list_bookings"), ListBookings, BookingList,
    "The tenant's bookings, by status and range, newest start first",
)  # fmt: skip
CONFIRM_BOOKING: Final[Rpc[ChangeBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "confirm_booking"), ChangeBooking, BookingReply,
    "Confirm a pending booking (compare-and-swap)",
)  # fmt: skip
DECLINE_BOOKING: Final[Rpc[ChangeBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "decline_booking"), ChangeBooking, BookingReply,
    "Decline a pending booking",
)  # fmt: skip
CANCEL_BOOKING: Final[Rpc[ChangeBooking, BookingReply]] = Rpc(
    subjects.command(BOOKING, "cancel_booking"), ChangeBooking, BookingReply,
    "Cancel a pending or confirmed booking",
)  # fmt: skip


def _event(name: str, summary: str) -> EventSpec[BookingEvent]:
    return EventSpec(subjects.event(BOOKING, name), BookingEvent, summary)


BOOKING_REQUESTED: Final = _event("booking_requested", "a booking was requested")
BOOKING_CONFIRMED: Final = _event("booking_confirmed", "a booking was confirmed")
BOOKING_PENDING: Final = _event("booking_pending", "a booking waits for the owner")
BOOKING_DECLINED: Final = _event("booking_declined", "a pending booking was declined")
BOOKING_CANCELLED: Final = _event("booking_cancelled", "a booking was cancelled")
BOOKING_EXPIRED: Final = _event("booking_expired", "a pending booking expired")
BOOKING_FAILED: Final = _event("booking_failed", "a booking failed and was compensated")

RPCS: Final = (
    GET_AVAILABILITY, GET_OWNER_AVAILABILITY, CREATE_BOOKING, GET_PUBLIC_BOOKING, GET_BOOKING,
    LIST_BOOKINGS, CONFIRM_BOOKING, DECLINE_BOOKING, CANCEL_BOOKING, GET_PAGE,
)  # fmt: skip
EVENTS: Final = (
    BOOKING_REQUESTED, BOOKING_CONFIRMED, BOOKING_PENDING, BOOKING_DECLINED, BOOKING_CANCELLED,
    BOOKING_EXPIRED, BOOKING_FAILED,
)  # fmt: skip
