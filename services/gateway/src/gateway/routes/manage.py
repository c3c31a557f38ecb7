"""The attendee's manage link: ``/public/{slug}/bookings/{id}/manage/{token}`` (the link is
in every answer about a booking made on a public page; see :mod:`gateway.manage_links`).
Under the per-IP limit of booking (``book``). A wrong token, another booking's, or an
unknown booking are the same 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Request
from pydantic import BaseModel, Field

from contracts import booking_changes as changes
from gateway import capabilities
from gateway.capabilities import PublicBookingOut, RescheduleIn
from gateway.deps import PublicCaller
from gateway.errors import documented
from gateway.limits import limited
from gateway.params import BookingId, PageSlug

router = APIRouter(prefix="/public", tags=["public"])
LINK = "/{slug}/bookings/{booking_id}/manage/{token}"
# any printable token reaches booking (a wrong one is its 404); 64 hex digits are given out
TOKEN_PATTERN = r"^[A-Za-z0-9_-]+$"  # noqa: S105 (a pattern, not a secret)
Token = Annotated[str, Path(min_length=1, max_length=changes.TOKEN_MAX, pattern=TOKEN_PATTERN)]


class AttendeeReasonIn(BaseModel):
    reason: str = Field(default="", max_length=500)


def _link(slug: str, booking_id: str, token: str) -> dict[str, str]:
    return {"slug": slug, "booking_id": booking_id, "token": token}


@router.get(
    LINK,
    response_model=PublicBookingOut,
    responses=documented(404, 429),
    dependencies=[Depends(limited("book"))],
)
async def managed(
    slug: PageSlug, booking_id: BookingId, token: Token, request: Request, call: PublicCaller
) -> PublicBookingOut:
    """The attendee's booking."""
    reply = await call(changes.GET_MANAGED_BOOKING, **_link(slug, booking_id, token))
    return capabilities.public_booking(request.app, reply.booking)


@router.post(
    f"{LINK}/reschedule",
    response_model=PublicBookingOut,
    responses=documented(400, 403, 404, 409, 429, 502),
    dependencies=[Depends(limited("book"))],
)
async def reschedule(
    slug: PageSlug,
    booking_id: BookingId,
    token: Token,
    body: RescheduleIn,
    request: Request,
    call: PublicCaller,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> PublicBookingOut:
    """Move the booking under the owner's rules: the new slot as a new booking's (a taken
    one is 409 with its details), and the owner's minimum notice before the booking's
    current start (``too_soon``). Same booking, same link; the calendar event moves."""
    reply = await call(
        changes.RESCHEDULE_MANAGED_BOOKING,
        **_link(slug, booking_id, token),
        start=body.start,
        end=body.end,
        idempotency_key=idempotency_key,
        request_hash=capabilities.body_hash(body),
    )
    return capabilities.public_booking(request.app, reply.booking)


@router.post(
    f"{LINK}/cancel",
    response_model=PublicBookingOut,
    responses=documented(400, 404, 409, 429, 502),
    dependencies=[Depends(limited("book"))],
)
async def cancel(
    slug: PageSlug,
    booking_id: BookingId,
    token: Token,
    request: Request,
    call: PublicCaller,
    body: Annotated[AttendeeReasonIn | None, Body()] = None,
) -> PublicBookingOut:
    """Cancel the booking (inside the owner's minimum notice: ``too_soon``); the calendar
    event is deleted and the slot is free at once."""
    reply = await call(
        changes.CANCEL_MANAGED_BOOKING,
        **_link(slug, booking_id, token),
        reason=body.reason if body else "",
    )
    return capabilities.public_booking(request.app, reply.booking)
