"""Public availability and booking pages, and the owner's bookings."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from contracts import booking as msg
from contracts import formats
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway.deps import Caller, PublicCaller, TenantCaller
from gateway.errors import documented
from gateway.handover import hand_over_booking
from gateway.limits import limited
from gateway.params import CURSOR, BookingId, PageSlug, Printable, schema_enum, years

public = APIRouter(prefix="/public", tags=["public"])
owner = APIRouter(prefix="/api/v1/bookings", tags=["bookings"])

Slug = PageSlug
# the years every moment in range has, whatever its offset (the bounds themselves: 400)
DAYS = years(msg.FIRST_DAY.year, msg.LAST_DAY.year)
MOMENTS = years(msg.EARLIEST.year + 1, msg.LATEST.year - 2)


class Slot(BaseModel):
    start: datetime
    end: datetime


class AvailabilityOut(BaseModel):
    slug: str
    date: date
    timezone: str
    duration: int
    slots: list[Slot]


@public.get(
    "/{slug}/availability",
    response_model=AvailabilityOut,
    responses=documented(400, 404, 429),
    dependencies=[Depends(limited("availability"))],
)
async def availability(
    slug: Slug,
    call: PublicCaller,
    day: Annotated[
        date,
        Query(
            alias="date",
            description="YYYY-MM-DD",
            ge=msg.FIRST_DAY,
            le=msg.LAST_DAY,
            json_schema_extra=DAYS,
        ),
    ],
    duration: Annotated[int | None, Query(ge=5, le=720, description="minutes")] = None,
    timezone: Annotated[
        str | None,
        Query(
            max_length=100,
            description="IANA zone",
            json_schema_extra=schema_enum(formats.time_zones()),
        ),
        Printable,
    ] = None,
) -> AvailabilityOut:
    """Free windows of at least ``duration`` minutes on ``date``, in ``timezone``'s offsets."""
    found = await call(
        msg.GET_AVAILABILITY, slug=slug, day=day, duration_minutes=duration, timezone=timezone
    )
    return AvailabilityOut(
        slug=found.slug,
        date=found.day,
        timezone=found.timezone,
        duration=found.duration_minutes,
        slots=[Slot(start=s.start, end=s.end) for s in found.slots],
    )


class BookingIn(BaseModel):
    title: str = Field(min_length=1, max_length=200, examples=["Meeting with Alice"])
    start: AwareDatetime = Field(
        examples=["2026-03-15T14:00:00Z"], ge=msg.EARLIEST, lt=msg.LATEST, json_schema_extra=MOMENTS
    )
    end: AwareDatetime = Field(
        examples=["2026-03-15T15:00:00Z"], ge=msg.EARLIEST, lt=msg.LATEST, json_schema_extra=MOMENTS
    )
    attendee_email: str = Field(min_length=3, max_length=320, json_schema_extra={"format": "email"})
    attendee_name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=5000)


class CalendarEvent(BaseModel):
    provider: str
    calendar_id: str
    uid: str


class BookingOut(BaseModel):
    booking_id: str
    status: msg.BookingStatus
    start: datetime
    end: datetime
    title: str
    attendee_email: str
    calendar_event: CalendarEvent | None


class BookingDetail(BookingOut):
    slug: str
    description: str
    attendee_name: str
    reason: str | None
    created_at: datetime


async def _booking_id(
    call: Caller, slug: str, idempotency_key: str | None
) -> tuple[str, str | None]:
    """A fresh id; with an Idempotency-Key the same id for every retry, so a retry and the
    first request (and its 202) are one booking. The key is the page owner's: the id is
    derived from the tenant that owns the page now, its slug and the key (a slug that
    passes to another tenant gives the same key another id), and that tenant goes with the
    request, refused if the page changed owner on the way. Returns the id and the tenant."""
    if idempotency_key is None:
        return f"bk_{secrets.token_hex(10)}", None
    page = await call(msg.GET_PAGE, slug=slug)
    scope = f"{page.page_tenant_id}\n{page.slug}\n{idempotency_key}"
    return f"bk_{hashlib.sha256(scope.encode()).hexdigest()[:20]}", page.page_tenant_id


class Accepted(BaseModel):
    booking_id: str
    status: str = "processing"
    status_url: str


def _out(info: msg.BookingInfo) -> BookingOut:
    return BookingOut(**info.model_dump(include=set(BookingOut.model_fields)))


def _accepted(slug: str, booking_id: str) -> JSONResponse:
    accepted = Accepted(booking_id=booking_id, status_url=f"/public/{slug}/bookings/{booking_id}")
    return JSONResponse(accepted.model_dump(), status_code=202)


def _booked(slug: str, info: msg.BookingInfo) -> Any:
    """What a booking request is answered with, from the booking as it stands: 201 only
    when it is made (``confirmed``, or ``pending`` the owner's confirmation); 202 with
    its status URL while its saga still runs (``held``: past the pivot it will be
    confirmed); an ended one (a retry of a request that failed, or of a booking since
    cancelled, declined or expired) is a 409 saying so."""
    if info.status in (msg.BookingStatus.CONFIRMED, msg.BookingStatus.PENDING):
        return _out(info)
    if info.status is msg.BookingStatus.HELD:
        return _accepted(slug, info.booking_id)
    reason = info.reason or f"The booking was {info.status.value}."
    if info.status is not msg.BookingStatus.FAILED:
        reason = f"This booking was {info.status.value}: {reason}"
    raise ServiceError(ErrorKind.CONFLICT, f"booking_{info.status.value}", reason)


def _detail(info: msg.BookingInfo) -> BookingDetail:
    return BookingDetail(**info.model_dump(include=set(BookingDetail.model_fields)))


@public.post(
    "/{slug}/book",
    status_code=201,
    response_model=BookingOut,
    responses={
        202: {"model": Accepted, "description": "Still running: poll status_url"},
        **documented(400, 402, 403, 404, 409, 429, 502),
    },
    dependencies=[Depends(limited("book"))],
)
async def book(
    slug: Slug,
    body: BookingIn,
    request: Request,
    call: PublicCaller,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Book a slot. Two-phase: hold, check the owner's calendars live, reserve quota, write
    the event, confirm. A retry with the same ``Idempotency-Key`` returns the first answer."""
    request_hash = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    booking_id, page_tenant_id = await _booking_id(call, slug, idempotency_key)
    command = call.message(
        msg.CREATE_BOOKING,
        booking_id=booking_id,
        page_tenant_id=page_tenant_id,
        slug=slug,
        title=body.title,
        start=body.start,
        end=body.end,
        attendee_email=body.attendee_email,
        attendee_name=body.attendee_name,
        description=body.description,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    timeout = request.app.state.settings.booking_timeout_seconds
    try:
        reply = await call.with_timeout(timeout).send(msg.CREATE_BOOKING, command)
    except ServiceError as exc:
        if exc.code != "service_timeout":
            raise
        # the saga may go on, or the request may never have reached booking: hand it over
        # durably so that booking settles it either way, then answer where to look
        await hand_over_booking(request.app, command)
        return _accepted(slug, command.booking_id)
    return _booked(slug, reply.booking)


@public.get("/{slug}/bookings/{booking_id}", response_model=BookingOut, responses=documented(404))
async def public_status(slug: Slug, booking_id: BookingId, call: PublicCaller) -> BookingOut:
    """The status of a booking made on this page (its id is an unguessable token)."""
    return _out((await call(msg.GET_PUBLIC_BOOKING, slug=slug, booking_id=booking_id)).booking)


class BookingPage(BaseModel):
    bookings: list[BookingDetail]
    next_cursor: str | None


@owner.get("", response_model=BookingPage, responses=documented(400, 401))
async def list_bookings(
    call: TenantCaller,
    status: msg.BookingStatus | None = None,
    start: Annotated[
        AwareDatetime | None,
        Query(alias="from", ge=msg.EARLIEST, lt=msg.LATEST, json_schema_extra=MOMENTS),
    ] = None,
    end: Annotated[
        AwareDatetime | None,
        Query(alias="to", ge=msg.EARLIEST, lt=msg.LATEST, json_schema_extra=MOMENTS),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, json_schema_extra=CURSOR), Printable
    ] = None,
) -> BookingPage:
    """The tenant's bookings, latest start first; filter by status and a [from, to) range."""
    page = await call(
        msg.LIST_BOOKINGS, status=status, start=start, end=end, limit=limit, cursor=cursor
    )
    return BookingPage(bookings=[_detail(b) for b in page.bookings], next_cursor=page.next_cursor)


class ReasonIn(BaseModel):
    reason: str = Field(default="", max_length=500)


@owner.get("/{booking_id}", response_model=BookingDetail, responses=documented(401, 404))
async def get_booking(booking_id: BookingId, call: TenantCaller) -> BookingDetail:
    return _detail((await call(msg.GET_BOOKING, booking_id=booking_id)).booking)


@owner.post(
    "/{booking_id}/confirm",
    response_model=BookingDetail,
    responses={
        202: {"model": BookingDetail, "description": "Confirmed; recorded shortly (pending)"},
        **documented(401, 404, 409, 502),
    },
)
async def confirm(booking_id: BookingId, call: TenantCaller) -> Any:
    """Confirm a pending booking: writes the calendar event and commits the quota. When the
    calendar cannot be written right now (503 with Retry-After), the booking stays pending
    and holds its slot: confirm again. Once the event is written the confirmation cannot
    fail: if it is not recorded at once (billing unreachable), the answer is 202 with the
    booking still ``pending``, and it turns ``confirmed`` shortly."""
    booking = (await call(msg.CONFIRM_BOOKING, booking_id=booking_id)).booking
    if booking.status is msg.BookingStatus.PENDING:
        return JSONResponse(_detail(booking).model_dump(mode="json"), status_code=202)
    return _detail(booking)


@owner.post(
    "/{booking_id}/decline", response_model=BookingDetail, responses=documented(400, 401, 404, 409)
)
async def decline(
    booking_id: BookingId, call: TenantCaller, body: Annotated[ReasonIn | None, Body()] = None
) -> BookingDetail:
    reason = body.reason if body else ""
    return _detail((await call(msg.DECLINE_BOOKING, booking_id=booking_id, reason=reason)).booking)


@owner.post(
    "/{booking_id}/cancel",
    response_model=BookingDetail,
    responses=documented(400, 401, 404, 409, 502),
)
async def cancel(
    booking_id: BookingId, call: TenantCaller, body: Annotated[ReasonIn | None, Body()] = None
) -> BookingDetail:
    """Cancel: the booking ends and its slot is free at once; the month's quota is given
    back when the meeting had not started yet. The calendar event is deleted now, or, when
    the calendar server cannot be reached, by the booking service's recovery as soon as it
    answers again (the answer is the cancelled booking either way)."""
    reason = body.reason if body else ""
    return _detail((await call(msg.CANCEL_BOOKING, booking_id=booking_id, reason=reason)).booking)
