"""What the gateway can do, once, whatever the door: REST routes, MCP tools, A2A methods.

Each capability takes a :class:`~gateway.deps.Caller` (the request's trace and, for the
owner's, the tenant) and plain typed arguments, calls the services and returns the pydantic
model the REST route answers with. A door only translates: HTTP status codes, JSON-RPC
errors and tool results are the door's; rules, ids and outcomes are here (and in the
services behind), so the doors cannot disagree.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts import billing, booking_changes, calendars, identity, policies
from contracts import booking as msg
from contracts.calendars import Provider
from contracts.policies import PolicyInfo
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway import consistency
from gateway.deps import Caller
from gateway.handover import hand_over_booking
from gateway.manage_links import manage_token, manage_token_hash, manage_url, secret_of
from gateway.params import years

log = logging.getLogger(__name__)

T = TypeVar("T")

# the years every moment in range has, whatever its offset (the bounds themselves: 400)
MOMENTS = years(msg.EARLIEST.year + 1, msg.LATEST.year - 2)


# --- models the doors answer with -------------------------------------------------------------


class Resolution(BaseModel):
    identity: str
    slug: str
    display_name: str
    availability_url: str
    booking_url: str


class Slot(BaseModel):
    start: datetime
    end: datetime


class AvailabilityOut(BaseModel):
    slug: str
    date: date
    timezone: str
    duration: int
    slots: list[Slot]


class _Range(BaseModel):
    """A range of dates, ``from`` and ``to`` (inclusive) in JSON."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    first: date = Field(alias="from", description="The first date")
    last: date = Field(alias="to", description="The last date (inclusive)")


class AvailabilityRangeOut(_Range):
    slug: str
    timezone: str
    duration: int
    slots: list[Slot] = Field(description="The free slots of every date, date after date")


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


class PublicBookingOut(BookingOut):
    manage_url: str = Field(
        description="The attendee's link to read, reschedule or cancel this booking "
        "(GET it; POST .../reschedule, .../cancel); keep it private"
    )


class BookingDetail(BookingOut):
    slug: str
    description: str
    attendee_name: str
    reason: str | None
    created_at: datetime
    history: list[msg.TimesChanged] = Field(
        default_factory=list,
        description="Its previous times, oldest reschedule first (start, end, changed_at, by)",
    )


class RescheduleIn(BaseModel):
    start: AwareDatetime = Field(
        examples=["2026-03-16T14:00:00Z"], ge=msg.EARLIEST, lt=msg.LATEST, json_schema_extra=MOMENTS
    )
    end: AwareDatetime = Field(
        examples=["2026-03-16T15:00:00Z"], ge=msg.EARLIEST, lt=msg.LATEST, json_schema_extra=MOMENTS
    )


class Accepted(BaseModel):
    booking_id: str
    status: str = "processing"
    status_url: str
    manage_url: str | None = Field(
        default=None, description="The attendee's link to read, reschedule or cancel it"
    )


class BookingPage(BaseModel):
    bookings: list[BookingDetail]
    next_cursor: str | None


class Connections(BaseModel):
    connections: list[calendars.ConnectionInfo]


class CallerList(BaseModel):
    callers: list[policies.CallerInfo]


class PolicyList(BaseModel):
    policies: list[PolicyInfo] = Field(
        description="In evaluation order: priority descending, then oldest first."
    )


class Settings(BaseModel):
    tenant_id: str
    email: str
    display_name: str
    slug: str | None
    open_scheduling: bool
    user_type: identity.UserType
    timezone: str
    working_hours: identity.WorkingHours
    max_advance_days: int
    min_notice_hours: int
    confirm_before_booking: bool
    buffer_minutes: int
    default_duration_minutes: int
    updated_at: datetime


class Activity(BaseModel):
    id: str
    type: str
    summary: str
    occurred_at: datetime
    ids: dict[str, str]


class ActivityFeed(BaseModel):
    items: list[Activity]
    next_cursor: str | None


class PlanSummary(BaseModel):
    tier: billing.PlanTier | None
    user_type: identity.UserType | None
    calendars_connected: int | None
    calendars_limit: int | None
    bookings_used: int | None
    bookings_limit: int | None
    calls_today: int | None
    calls_daily_limit: int | None


class CalendarSummary(BaseModel):
    provider: Provider
    email: str
    calendar_count: int


class ActivitySummary(BaseModel):
    id: str
    type: str
    summary: str
    occurred_at: datetime
    ids: dict[str, str]


class DashboardSummary(BaseModel):
    plan: PlanSummary
    calendars: list[CalendarSummary]
    recent_activity: list[ActivitySummary]
    unavailable: list[str] = Field(
        default_factory=list,
        description="Parts whose service did not answer in time (present only then): "
        "billing (plan and usage), calendars, identity (activity)",
    )


# --- public -----------------------------------------------------------------------------------


async def resolve_identity(call: Caller, identity_text: str, base_url: str) -> Resolution:
    """The public page of a person with Open Scheduling on; any other case, an unknown
    e-mail included, is the same ``identity_not_found``. ``base_url``: the gateway's
    public base URL the links start with."""
    resolved = await call(identity.RESOLVE_IDENTITY, identity=identity_text)
    base = f"{base_url.rstrip('/')}/public/{resolved.slug}"
    return Resolution(
        identity=resolved.identity,
        slug=resolved.slug,
        display_name=resolved.display_name,
        availability_url=f"{base}/availability",
        booking_url=f"{base}/book",
    )


async def public_availability(
    call: Caller, slug: str, day: date, duration: int | None, timezone: str | None
) -> AvailabilityOut:
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


async def public_availability_range(
    call: Caller, slug: str, first: date, last: date, duration: int | None, timezone: str | None
) -> AvailabilityRangeOut:
    """The public page's free slots on every date ``first``..``last`` (inclusive, at most
    31): the days' answers one after another, from one booking request."""
    found = await call(
        msg.GET_AVAILABILITY,
        slug=slug,
        day=first,
        last_day=last,
        duration_minutes=duration,
        timezone=timezone,
    )
    return AvailabilityRangeOut(
        slug=found.slug,
        first=found.day,
        last=found.last_day or found.day,
        timezone=found.timezone,
        duration=found.duration_minutes,
        slots=[Slot(start=s.start, end=s.end) for s in found.slots],
    )


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


def booking_out(info: msg.BookingInfo) -> BookingOut:
    return BookingOut(**info.model_dump(include=set(BookingOut.model_fields)))


def public_booking(app: FastAPI, info: msg.BookingInfo) -> PublicBookingOut:
    """A booking as its attendee sees it: with its manage link."""
    return PublicBookingOut(
        **booking_out(info).model_dump(), manage_url=manage_url(app, info.slug, info.booking_id)
    )


def body_hash(body: BaseModel) -> str:
    """The hash of a request body an Idempotency-Key is checked against."""
    return hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()


def booking_detail(info: msg.BookingInfo) -> BookingDetail:
    return BookingDetail(**info.model_dump(include=set(BookingDetail.model_fields)))


def accepted(slug: str, booking_id: str, app: FastAPI | None = None) -> Accepted:
    return Accepted(
        booking_id=booking_id,
        status_url=f"/public/{slug}/bookings/{booking_id}",
        manage_url=manage_url(app, slug, booking_id) if app is not None else None,
    )


def _booked(app: FastAPI, slug: str, info: msg.BookingInfo) -> BookingOut | Accepted:
    """What a booking request is answered with, from the booking as it stands: made
    (``confirmed``, or ``pending`` the owner's confirmation); accepted with its status URL
    while its saga still runs (``held``: past the pivot it will be confirmed); an ended one
    (a retry of a request that failed, or of a booking since cancelled, declined or
    expired) is a conflict saying so."""
    if info.status in (msg.BookingStatus.CONFIRMED, msg.BookingStatus.PENDING):
        return public_booking(app, info)
    if info.status is msg.BookingStatus.HELD:
        return accepted(slug, info.booking_id, app)
    reason = info.reason or f"The booking was {info.status.value}."
    if info.status is not msg.BookingStatus.FAILED:
        reason = f"This booking was {info.status.value}: {reason}"
    raise ServiceError(ErrorKind.CONFLICT, f"booking_{info.status.value}", reason)


async def request_booking(
    call: Caller, app: FastAPI, slug: str, body: BookingIn, idempotency_key: str | None = None
) -> BookingOut | Accepted:
    """Book a slot: the booking made (``BookingOut``), or ``Accepted`` (HTTP 202) when its
    saga is still running or booking did not answer in time (then handed over durably)."""
    request_hash = body_hash(body)
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
        manage_token_hash=manage_token_hash(manage_token(secret_of(app), booking_id)),
    )
    timeout = app.state.settings.booking_timeout_seconds
    try:
        reply = await call.with_timeout(timeout).send(msg.CREATE_BOOKING, command)
    except ServiceError as exc:
        if exc.code != "service_timeout":
            raise
        # the saga may go on, or the request may never have reached booking: hand it over
        # durably so that booking settles it either way, then answer where to look
        await hand_over_booking(app, command)
        return accepted(slug, command.booking_id, app)
    return _booked(app, slug, reply.booking)


async def public_booking_status(
    call: Caller, app: FastAPI, slug: str, booking_id: str
) -> PublicBookingOut:
    found = await call(msg.GET_PUBLIC_BOOKING, slug=slug, booking_id=booking_id)
    return public_booking(app, found.booking)


# --- the owner's: settings ------------------------------------------------------------------


def _flat(settings: identity.TenantSettings) -> Settings:
    return Settings(
        **settings.model_dump(exclude={"booking_rules"}), **settings.booking_rules.model_dump()
    )


async def get_settings(call: Caller) -> Settings:
    return _flat((await call(identity.GET_SETTINGS)).settings)


async def update_settings(call: Caller, **change: Any) -> Settings:
    """Change some settings (``slug``, ``open_scheduling``, ``booking_rules`` (a
    ``BookingRulesPatch``), ``user_type``, ``timezone``, ``working_hours``,
    ``display_name``); answered once every service that applies them has."""
    changed = (await call(identity.UPDATE_SETTINGS, **change)).settings
    return _flat(await consistency.settings_changed(call, changed))


# --- the owner's: availability and bookings ---------------------------------------------------


class OwnerAvailability(_Range):
    timezone: str
    duration: int
    slots: list[Slot] = Field(
        description="The free slots of every date, date after date: the public page's"
    )
    busy: list[msg.BusyBlock] | None = Field(
        default=None,
        description="With explain=true (null otherwise): the rest of each date, local "
        "midnight to midnight, as blocks with every reason that holds all through them "
        "(slots and busy partition each date; no block crosses midnight)",
    )


async def owner_availability(
    call: Caller,
    first_day: date,
    last_day: date | None = None,
    duration: int | None = None,
    timezone: str | None = None,
    explain: bool = False,
) -> OwnerAvailability:
    """The owner's free windows from ``first_day`` to ``last_day`` (inclusive, at most
    31 days): their page's rules and busy time, whether the page is open or not; with
    ``explain``, why the rest of each day is busy."""
    found = await call(
        msg.GET_OWNER_AVAILABILITY,
        first_day=first_day,
        last_day=last_day or first_day,
        duration_minutes=duration,
        timezone=timezone,
        explain=explain,
    )
    return OwnerAvailability(
        first=first_day,
        last=last_day or first_day,
        timezone=found.timezone,
        duration=found.duration_minutes,
        slots=[Slot(start=s.start, end=s.end) for d in found.days for s in d.slots],
        busy=[b for d in found.days for b in d.busy or ()] if explain else None,
    )


class FreeSlots(BaseModel):
    duration: int
    timezone: str
    slots: list[Slot]


async def find_free_slots(
    call: Caller, start: datetime, end: datetime, duration: int, timezone: str | None = None
) -> FreeSlots:
    """The free windows of at least ``duration`` minutes that lie inside [start, end)."""
    if end <= start:
        raise ServiceError(ErrorKind.INVALID, "invalid_range", "'to' must be after 'from'.")
    zone = timezone or (await call(identity.GET_SETTINGS)).settings.timezone
    local = ZoneInfo(zone)
    found = await owner_availability(
        call,
        start.astimezone(local).date(),
        end.astimezone(local).date(),
        duration,
        zone,
    )
    slots = [
        Slot(start=max(slot.start, start), end=min(slot.end, end))
        for slot in found.slots
        if slot.end > start and slot.start < end
    ]
    return FreeSlots(
        duration=duration,
        timezone=zone,
        slots=[s for s in slots if (s.end - s.start) >= timedelta(minutes=duration)],
    )


async def list_bookings(
    call: Caller,
    status: msg.BookingStatus | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> BookingPage:
    page = await call(
        msg.LIST_BOOKINGS, status=status, start=start, end=end, limit=limit, cursor=cursor
    )
    return BookingPage(
        bookings=[booking_detail(b) for b in page.bookings], next_cursor=page.next_cursor
    )


async def get_booking(call: Caller, booking_id: str) -> BookingDetail:
    return booking_detail((await call(msg.GET_BOOKING, booking_id=booking_id)).booking)


async def confirm_booking(call: Caller, booking_id: str) -> BookingDetail:
    """Confirm a pending booking; still ``pending`` when it is not recorded at once
    (REST answers that 202)."""
    return booking_detail((await call(msg.CONFIRM_BOOKING, booking_id=booking_id)).booking)


async def reschedule_booking(
    call: Caller,
    booking_id: str,
    start: datetime,
    end: datetime,
    idempotency_key: str | None = None,
) -> BookingDetail:
    """Move a booking to [start, end): the same booking, new times (``confirmed``, or
    ``pending`` when the new slot needs the owner's confirmation), the calendar event moved;
    its previous times in ``history``. The new slot obeys a new booking's rules."""
    body = RescheduleIn(start=start, end=end)
    reply = await call(
        booking_changes.RESCHEDULE_BOOKING,
        booking_id=booking_id,
        start=body.start,
        end=body.end,
        idempotency_key=idempotency_key,
        request_hash=body_hash(body),
    )
    return booking_detail(reply.booking)


async def decline_booking(call: Caller, booking_id: str, reason: str = "") -> BookingDetail:
    return booking_detail(
        (await call(msg.DECLINE_BOOKING, booking_id=booking_id, reason=reason)).booking
    )


async def cancel_booking(call: Caller, booking_id: str, reason: str = "") -> BookingDetail:
    return booking_detail(
        (await call(msg.CANCEL_BOOKING, booking_id=booking_id, reason=reason)).booking
    )


# --- the owner's: calendars, callers, policies -------------------------------------------


async def list_calendars(call: Caller) -> Connections:
    return Connections(connections=(await call(calendars.LIST_CONNECTIONS)).connections)


async def list_callers(call: Caller) -> CallerList:
    return CallerList(callers=(await call(policies.LIST_CALLERS)).callers)


async def create_caller(
    call: Caller, email: str, display_name: str = "", trust_level: str = "standard"
) -> policies.CallerInfo:
    created = await call(
        policies.CREATE_CALLER, email=email, display_name=display_name, trust_level=trust_level
    )
    return created.caller


async def update_caller(
    call: Caller,
    caller_id: str,
    email: str | None = None,
    display_name: str | None = None,
    trust_level: str | None = None,
) -> policies.CallerInfo:
    updated = await call(
        policies.UPDATE_CALLER,
        caller_id=caller_id,
        email=email,
        display_name=display_name,
        trust_level=trust_level,
    )
    return updated.caller


async def upsert_caller(
    call: Caller, email: str, display_name: str | None = None, trust_level: str | None = None
) -> policies.CallerInfo:
    """The caller with ``email`` (case-insensitive) changed, or created when there is none
    (fields left out: kept, or the defaults for a new caller)."""
    upserted = await call(
        policies.UPSERT_CALLER, email=email, display_name=display_name, trust_level=trust_level
    )
    return upserted.caller


async def list_policies(call: Caller) -> PolicyList:
    return PolicyList(policies=(await call(policies.LIST_POLICIES)).policies)


async def create_policy(
    call: Caller,
    name: str,
    condition_type: str,
    condition_value: str,
    action: str,
    priority: int = 0,
    enabled: bool = True,
) -> policies.PolicyInfo:
    created = await call(
        policies.CREATE_POLICY,
        name=name,
        condition_type=condition_type,
        condition_value=condition_value,
        action=action,
        priority=priority,
        enabled=enabled,
    )
    return created.policy


# --- the owner's: dashboard and activity -------------------------------------------------

PART_TIMEOUT_SECONDS = 2.5
RECENT_ACTIVITY = 10


async def _part(name: str, call: Awaitable[T]) -> T | None:
    try:
        return await asyncio.wait_for(call, PART_TIMEOUT_SECONDS)
    except (ServiceError, TimeoutError) as exc:
        reason = exc.reply.message if isinstance(exc, ServiceError) else "timed out"
        log.warning("dashboard part unavailable", extra={"part": name, "error": reason})
        return None


async def dashboard(call: Caller) -> DashboardSummary:
    """Plan, limits and usage; connected calendars; the ten latest activity items. Each
    part has its own deadline; a part whose service is down or late is left empty and
    named in ``unavailable``."""
    plan, connections, activity = await asyncio.gather(
        _part("billing", call(billing.GET_PLAN)),
        _part("calendars", call(calendars.LIST_CONNECTIONS)),
        _part("identity", call(identity.LIST_ACTIVITY, limit=RECENT_ACTIVITY)),
    )
    unavailable = [
        name
        for name, part in (("billing", plan), ("calendars", connections), ("identity", activity))
        if part is None
    ]
    listed = connections.connections if connections is not None else []
    return DashboardSummary(
        plan=PlanSummary(
            tier=plan.tier if plan else None,
            user_type=plan.user_type if plan else None,
            calendars_connected=len(listed) if connections is not None else None,
            calendars_limit=plan.calendars_limit if plan else None,
            bookings_used=plan.bookings_used if plan else None,
            bookings_limit=plan.bookings_limit if plan else None,
            calls_today=plan.calls_today if plan else None,
            calls_daily_limit=plan.calls_daily_limit if plan else None,
        ),
        calendars=[
            CalendarSummary(provider=c.provider, email=c.email, calendar_count=c.calendar_count)
            for c in listed
        ],
        recent_activity=[
            ActivitySummary(**item.model_dump()) for item in (activity.items if activity else [])
        ],
        unavailable=unavailable,
    )


async def list_activity(call: Caller, limit: int = 50, cursor: str | None = None) -> ActivityFeed:
    page = await call(identity.LIST_ACTIVITY, limit=limit, cursor=cursor)
    return ActivityFeed(
        items=[Activity(**item.model_dump()) for item in page.items], next_cursor=page.next_cursor
    )
