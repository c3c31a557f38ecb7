"""Public availability and booking pages, and the owner's bookings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from contracts import booking as msg
from gateway import capabilities
from gateway.capabilities import (
    Accepted,
    AvailabilityOut,
    BookingDetail,
    BookingIn,
    BookingOut,
    BookingPage,
    CalendarEvent,
    PublicBookingOut,
    RescheduleIn,
    Slot,
)
from gateway.deps import PublicCaller, TenantCaller
from gateway.errors import documented
from gateway.limits import limited
from gateway.params import CURSOR, BookingId, PageSlug, Printable, years

public = APIRouter(prefix="/public", tags=["public"])
owner = APIRouter(prefix="/api/v1/bookings", tags=["bookings"])

Slug = PageSlug
# the years every moment in range has, whatever its offset (the bounds themselves: 400)
DAYS = years(msg.FIRST_DAY.year, msg.LAST_DAY.year)
MOMENTS = capabilities.MOMENTS

__all__ = [
    "Accepted",
    "AvailabilityOut",
    "BookingDetail",
    "BookingIn",
    "BookingOut",
    "BookingPage",
    "CalendarEvent",
    "PublicBookingOut",
    "RescheduleIn",
    "Slot",
]


@public.post(
    "/{slug}/book",
    status_code=201,
    response_model=PublicBookingOut,
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
    booked = await capabilities.request_booking(call, request.app, slug, body, idempotency_key)
    if isinstance(booked, Accepted):
        return JSONResponse(booked.model_dump(), status_code=202)
    return booked


@public.get(
    "/{slug}/bookings/{booking_id}", response_model=PublicBookingOut, responses=documented(404)
)
async def public_status(
    slug: Slug, booking_id: BookingId, request: Request, call: PublicCaller
) -> PublicBookingOut:
    """The status of a booking made on this page (its id is an unguessable token), with its
    manage link."""
    return await capabilities.public_booking_status(call, request.app, slug, booking_id)


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
    return await capabilities.list_bookings(call, status, start, end, limit, cursor)


class ReasonIn(BaseModel):
    reason: str = Field(default="", max_length=500)


@owner.get("/{booking_id}", response_model=BookingDetail, responses=documented(401, 404))
async def get_booking(booking_id: BookingId, call: TenantCaller) -> BookingDetail:
    return await capabilities.get_booking(call, booking_id)


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
    booking = await capabilities.confirm_booking(call, booking_id)
    if booking.status is msg.BookingStatus.PENDING:
        return JSONResponse(booking.model_dump(mode="json"), status_code=202)
    return booking


@owner.post(
    "/{booking_id}/decline", response_model=BookingDetail, responses=documented(400, 401, 404, 409)
)
async def decline(
    booking_id: BookingId, call: TenantCaller, body: Annotated[ReasonIn | None, Body()] = None
) -> BookingDetail:
    reason = body.reason if body else ""
    return await capabilities.decline_booking(call, booking_id, reason)


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
    return await capabilities.cancel_booking(call, booking_id, reason)


@owner.post(
    "/{booking_id}/reschedule",
    response_model=BookingDetail,
    responses=documented(400, 401, 403, 404, 409, 502),
)
async def reschedule(
    booking_id: BookingId,
    body: RescheduleIn,
    call: TenantCaller,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> BookingDetail:
    """Move a booking to new times: the same booking (same id), ``confirmed``, or
    ``pending`` when the new slot needs the owner's confirmation (their rule or a policy).
    The new slot is held before the old one is released, and the calendar event is moved
    in place (same UID); the month's quota is unchanged. The new slot obeys the rules of a
    new booking (a taken one is 409 with the same details); the previous times are kept in
    ``history``. A retry with the same ``Idempotency-Key`` returns the first answer."""
    return await capabilities.reschedule_booking(
        call, booking_id, body.start, body.end, idempotency_key
    )
