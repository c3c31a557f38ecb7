"""The MCP door: Streamable HTTP at ``/mcp`` on every gateway replica.

Stateless (``stateless_http``): every request is served by a fresh transport, so any replica
answers any request and a load balancer needs no sticky sessions. Both the session-based
protocol (``initialize`` first, 2025-11-25) and the session-less one (2026-07-28,
``server/discover``) are served by the SDK.

A tool is a door, not a rule: each one calls the capability its REST route calls
(:mod:`gateway.capabilities`), under the same per-IP limits (:func:`gateway.limits.check_limit`),
the same key verification and revocation cache (:func:`gateway.auth.verify_key`) and the same
calls/day counter (:class:`gateway.quota.CallQuota`). Every answer carries the same structured
content; its text is TOON unless the call asks ``format: "json"``. A failure is a tool error
(``isError``) whose structured content is ``{error, code, details?, retry_after_seconds?}``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from fastapi import FastAPI
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from contracts import booking as booking_msg
from contracts import formats, policies
from contracts import identity as identity_msg
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway import capabilities as cap
from gateway import temporal, toon
from gateway.auth import verify_key
from gateway.deps import Caller
from gateway.errors import retry_after_seconds
from gateway.limits import check_limit
from gateway.params import bounds_of
from gateway.routes.identity import public_base
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

MCP_PATH = "/mcp"
NEEDS_KEY = (
    "This tool needs the owner's API key: connect with the HTTP header "
    "'Authorization: Bearer sk_live_...' (create a key with POST /api/v1/keys)."
)

Format = Annotated[
    Literal["toon", "json"],
    Field(
        description="How the text content is written: 'toon' (compact, the default) or "
        "'json'. The structured content is the same either way."
    ),
]


def _booking(field: str) -> dict[str, Any]:
    """The bounds of a field of the booking request REST and A2A take."""
    return bounds_of(cap.BookingIn, field)


def _rule(field: str) -> dict[str, Any]:
    """The bounds identity states for a booking rule."""
    return bounds_of(identity_msg.BookingRulesPatch, field)


Slug = Annotated[
    str,
    Field(
        min_length=formats.SLUG_MIN,
        max_length=formats.SLUG_MAX,
        pattern=formats.PAGE_SLUG_PATTERN,
        description="The public page's slug (from resolve_identity, or the owner's settings)",
    ),
]
Zone = Annotated[
    str | None,
    Field(
        default=None,
        **bounds_of(booking_msg.GetAvailability, "timezone"),
        description="IANA time zone the times are given in, e.g. Europe/Berlin; "
        "default: the owner's",
    ),
]
Duration = Annotated[
    int | None,
    Field(
        default=None,
        **bounds_of(booking_msg.GetAvailability, "duration_minutes"),
        description="Meeting length in minutes; default: the owner's",
    ),
]
Day = Annotated[
    dt.date,
    Field(ge=booking_msg.FIRST_DAY, le=booking_msg.LAST_DAY, description="A date, YYYY-MM-DD"),
]
Moment = Annotated[
    dt.datetime,
    Field(description="RFC 3339 date-time with an offset, e.g. 2026-03-15T14:00:00+01:00"),
]
BookingIdArg = Annotated[
    str,
    Field(
        **bounds_of(booking_msg.CreateBooking, "booking_id"),
        description="A booking id, bk_... (from list_bookings)",
    ),
]
Reason = Annotated[
    str,
    Field(
        default="",
        **bounds_of(booking_msg.ChangeBooking, "reason"),
        description="Why; shown to the attendee",
    ),
]

READ = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
CHANGE = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False
)
REPLACE = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
)
CREATE = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
)
END = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False
)


class ToolRefusal(Exception):
    """A tool error an agent can act on: its sentence, code and details."""

    def __init__(
        self,
        message: str,
        code: str,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = {"error": message, "code": code}
        if details:
            self.body["details"] = details
        if retry_after is not None:
            self.body["retry_after_seconds"] = retry_after


class BookingOutcome(BaseModel):
    """``request_booking``'s answer: the booking made (REST's 201 body: ``confirmed``, or
    ``pending`` the owner's confirmation), or, while its saga still runs, its id, status
    ``processing`` and the status URL to poll (REST's 202 body)."""

    booking_id: str
    status: str = Field(description="confirmed, pending or processing")
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    title: str | None = None
    attendee_email: str | None = None
    calendar_event: cap.CalendarEvent | None = None
    status_url: str | None = Field(default=None, description="Only while processing")

    @classmethod
    def of(cls, answer: cap.BookingOut | cap.Accepted) -> BookingOutcome:
        return cls(**answer.model_dump())


def _text(body: Any, fmt: str) -> str:
    return json.dumps(body, ensure_ascii=False) if fmt == "json" else toon.encode(body)


def _result(model: BaseModel, fmt: str) -> CallToolResult:
    # fields left unset are left out: a booking outcome is exactly REST's 201 or 202 body
    exclude_unset = isinstance(model, BookingOutcome)
    structured = model.model_dump(mode="json", exclude_unset=exclude_unset)
    return CallToolResult(
        content=[TextContent(type="text", text=_text(structured, fmt))],
        structured_content=structured,
    )


def _refusal(exc: Exception) -> ToolRefusal:
    if isinstance(exc, ToolRefusal):
        return exc
    if isinstance(exc, ServiceError):
        reply = exc.reply
        retry = None
        if reply.kind is ErrorKind.UNAVAILABLE:
            retry = 1
        return ToolRefusal(reply.message, reply.code, dict(reply.details) or None, retry)
    if isinstance(exc, HTTPException) and exc.status_code == 429:
        wait = retry_after_seconds((exc.headers or {}).get("Retry-After"))
        return ToolRefusal(str(exc.detail), "rate_limited", None, wait)
    raise exc


async def _answer(fmt: str, work: Awaitable[M]) -> CallToolResult:
    try:
        return _result(await work, fmt)
    except (ServiceError, HTTPException, ToolRefusal) as exc:
        body = _refusal(exc).body
        return CallToolResult(
            content=[TextContent(type="text", text=_text(body, fmt))],
            structured_content=body,
            is_error=True,
        )


def _request(ctx: Context) -> Request:
    request = ctx.request_context.request
    if not isinstance(request, Request):  # not over HTTP (stdio): no key, no client address
        raise ToolRefusal("This tool is served over HTTP only.", "http_only")
    return request


def _app(request: Request) -> FastAPI:
    app: FastAPI = request.app
    return app


def _request_id(request: Request) -> str:
    return str(request.state.request_id)


async def public_caller(ctx: Context, limit: str) -> tuple[Caller, Request]:
    """A caller for a public tool, counted against the REST route's per-IP limit."""
    request = _request(ctx)
    app = _app(request)
    await check_limit(app, limit, app.state.rate_limiter.client_of(request))
    return Caller(app.state.rpc, _request_id(request), None), request


async def _as_owner(
    ctx: Context, fmt: str, work: Callable[[Caller], Awaitable[M]], *, count: bool = True
) -> CallToolResult:
    """An owner tool's answer: ``work`` run as the key's tenant (a tool error without one)."""

    async def run() -> M:
        return await work(await owner_caller(ctx, count=count))

    return await _answer(fmt, run())


async def owner_caller(ctx: Context, *, count: bool = True) -> Caller:
    """A caller on behalf of the key's tenant: the same verification (and revocation cache)
    as REST, and one call of the plan's calls/day (as REST; not for the dashboard)."""
    request = _request(ctx)
    app = _app(request)
    header = request.headers.get("authorization", "")
    if not header:
        raise ToolRefusal(NEEDS_KEY, "unauthorized")
    try:
        principal = await verify_key(app, header, _request_id(request))
    except ServiceError as exc:
        if exc.kind is ErrorKind.UNAUTHORIZED:
            raise ToolRefusal(f"{exc.reply.message} {NEEDS_KEY}", "unauthorized") from exc
        raise
    if count:
        await app.state.call_quota.admit(principal.tenant_id, request)
    return Caller(app.state.rpc, _request_id(request), principal.tenant_id)


def _renamed(**wire_names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Arguments whose wire name is a Python keyword (``from``): the tool's parameter is
    declared as ``from_`` with ``Field(alias="from")``, and the SDK passes it by its alias."""

    def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def call(**arguments: Any) -> Any:
            for wire, name in wire_names.items():
                if wire in arguments:
                    arguments[name] = arguments.pop(wire)
            return await fn(**arguments)

        return call

    return decorate


def transport_security(settings: GatewaySettings) -> TransportSecuritySettings:
    """Host (and Origin) checks against DNS rebinding: the gateway's public host names
    (``public_url``, ``mcp_allowed_hosts``) and, in development, 127.0.0.1 and localhost."""
    hosts = [h.strip() for h in settings.mcp_allowed_hosts.split(",") if h.strip()]
    origins: list[str] = []
    if settings.public_url:
        public = urlsplit(settings.public_url)
        if public.hostname:
            hosts.append(public.netloc)
            origins.append(f"{public.scheme}://{public.netloc}")
    if settings.is_development or not hosts:
        hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*"]
        origins += ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    origins += [f"https://{h}" for h in hosts if "*" not in h]
    return TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)


def build_mcp() -> MCPServer:
    mcp: MCPServer = MCPServer(
        "cortex",
        version="0.1.0",
        instructions=(
            "Cortex schedules meetings. Public tools (resolve_identity, "
            "query_public_availability, request_booking) need no key; the owner's tools need "
            "'Authorization: Bearer sk_live_...'. Times are RFC 3339 with offsets; use the "
            "time tools to compute them instead of guessing."
        ),
    )

    for register in (_public_tools, _settings_tools, _booking_tools, _account_tools, _time_tools):
        register(mcp)
    return mcp


def _public_tools(mcp: MCPServer) -> None:
    # --- public -------------------------------------------------------------------------------

    @mcp.tool(annotations=READ)
    async def resolve_identity(
        identity: Annotated[
            str,
            Field(min_length=3, max_length=320, description="The person's e-mail address"),
        ],
        ctx: Context,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.Resolution]:
        """Find a person's public scheduling page by e-mail: its slug and the availability
        and booking URLs. Only people with Open Scheduling on are found; any other case is
        the same 'identity_not_found' error."""

        async def work() -> cap.Resolution:
            call, request = await public_caller(ctx, "resolve")
            return await cap.resolve_identity(call, identity, public_base(request))

        return await _answer(format, work())

    @mcp.tool(annotations=READ)
    async def query_public_availability(
        slug: Slug,
        date: Day,
        ctx: Context,
        duration: Duration = None,
        timezone: Zone = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.AvailabilityOut]:
        """Free slots on a public page on one date: windows of at least 'duration' minutes
        inside the owner's working hours, their calendars and bookings considered; times in
        'timezone's offsets. Book one with request_booking."""

        async def work() -> cap.AvailabilityOut:
            call, _ = await public_caller(ctx, "availability")
            return await cap.public_availability(call, slug, date, duration, timezone)

        return await _answer(format, work())

    @mcp.tool(annotations=CREATE)
    async def request_booking(
        slug: Slug,
        start: Moment,
        end: Moment,
        title: Annotated[str, Field(**_booking("title"), description="Meeting title")],
        attendee_email: Annotated[
            str, Field(**_booking("attendee_email"), description="Who is booking (e-mail)")
        ],
        ctx: Context,
        attendee_name: Annotated[
            str, Field(**_booking("attendee_name"), description="Their name")
        ] = "",
        description: Annotated[
            str, Field(**_booking("description"), description="Agenda, notes")
        ] = "",
        format: Format = "toon",
    ) -> Annotated[CallToolResult, BookingOutcome]:
        """Book a slot that query_public_availability offered. The answer is the booking
        (status 'confirmed', or 'pending' the owner's confirmation), or 'processing' with a
        status URL. A taken slot is a 'slot_unavailable' error naming the clashing event and
        offering the next free slots of the same length (details.next_slots)."""

        async def work() -> BookingOutcome:
            call, request = await public_caller(ctx, "book")
            body = cap.BookingIn(
                title=title,
                start=start,
                end=end,
                attendee_email=attendee_email,
                attendee_name=attendee_name,
                description=description,
            )
            return BookingOutcome.of(await cap.request_booking(call, _app(request), slug, body))

        return await _answer(format, work())


def _settings_tools(mcp: MCPServer) -> None:
    # --- the owner's settings -------------------------------------------------------------

    @mcp.tool(annotations=READ)
    async def get_settings(
        ctx: Context, format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.Settings]:
        """The owner's settings: slug, Open Scheduling, time zone, working hours, booking
        rules (notice, advance, buffer, default duration, confirmation)."""

        return await _as_owner(ctx, format, cap.get_settings)

    @mcp.tool(annotations=CHANGE)
    async def update_booking_rules(
        ctx: Context,
        max_advance_days: Annotated[
            int | None,
            Field(**_rule("max_advance_days"), description="How far ahead one can book (days)"),
        ] = None,
        min_notice_hours: Annotated[
            int | None,
            Field(**_rule("min_notice_hours"), description="How soon one can book (hours)"),
        ] = None,
        confirm_before_booking: Annotated[
            bool | None, Field(description="Bookings wait for the owner's confirmation")
        ] = None,
        buffer_minutes: Annotated[
            int | None,
            Field(**_rule("buffer_minutes"), description="Free time kept around busy time"),
        ] = None,
        default_duration_minutes: Annotated[
            int | None,
            Field(
                **_rule("default_duration_minutes"), description="Meeting length when none is asked"
            ),
        ] = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.Settings]:
        """Change some booking rules; the ones left out keep their values."""

        async def work() -> cap.Settings:
            rules = identity_msg.BookingRulesPatch(
                max_advance_days=max_advance_days,
                min_notice_hours=min_notice_hours,
                confirm_before_booking=confirm_before_booking,
                buffer_minutes=buffer_minutes,
                default_duration_minutes=default_duration_minutes,
            )
            return await cap.update_settings(await owner_caller(ctx), booking_rules=rules)

        return await _answer(format, work())

    @mcp.tool(annotations=REPLACE)
    async def update_working_hours(
        working_hours: Annotated[
            dict[str, list[identity_msg.WorkingInterval]],
            Field(
                description="Per weekday (mon..sun) the local HH:MM intervals, e.g. "
                '{"mon": [{"start": "09:00", "end": "17:00"}]}; a weekday left out has '
                "none. Replaces the current working hours."
            ),
        ],
        ctx: Context,
        timezone: Zone = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.Settings]:
        """Set the owner's working hours (and, optionally, their time zone)."""

        async def work() -> cap.Settings:
            change: dict[str, Any] = {"working_hours": working_hours}
            if timezone is not None:
                change["timezone"] = timezone
            return await cap.update_settings(await owner_caller(ctx), **change)

        return await _answer(format, work())

    @mcp.tool(annotations=CHANGE)
    async def set_open_scheduling(
        enabled: Annotated[bool, Field(description="true: the public page is open")],
        ctx: Context,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.Settings]:
        """Open or close the owner's public page (resolve_identity finds only open pages)."""

        return await _as_owner(
            ctx, format, lambda call: cap.update_settings(call, open_scheduling=enabled)
        )


def _booking_tools(mcp: MCPServer) -> None:
    # --- the owner's availability and bookings ---------------------------------------------

    @mcp.tool(annotations=READ)
    @_renamed(**{"from": "from_"})
    async def get_availability(
        ctx: Context,
        date: Annotated[dt.date | None, Field(description="One date, YYYY-MM-DD")] = None,
        from_: Annotated[
            dt.date | None, Field(alias="from", description="First date of a range")
        ] = None,
        to: Annotated[dt.date | None, Field(description="Last date of a range (inclusive)")] = None,
        duration: Duration = None,
        timezone: Zone = None,
        explain: Annotated[
            bool, Field(description="Also say why the rest of each date is busy ('busy')")
        ] = False,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.OwnerAvailability]:
        """The owner's free slots on 'date', or on each date 'from'..'to' (at most 31), in
        one list: the rules and busy time of their public page, whether it is open or not
        (what GET /api/v1/availability answers). With 'explain', 'busy' covers the rest of
        each date in blocks, each with its reasons (outside_working_hours, min_notice,
        max_advance, buffer, calendar_event, booking, unknown, too_short)."""

        async def work() -> cap.OwnerAvailability:
            call = await owner_caller(ctx)
            first = date or from_
            if first is None:
                raise ToolRefusal("Send 'date', or 'from' and 'to'.", "invalid_arguments")
            return await cap.owner_availability(
                call, first, to or first, duration, timezone, explain
            )

        return await _answer(format, work())

    @mcp.tool(annotations=READ)
    @_renamed(**{"from": "from_"})
    async def find_free_slots(
        from_: Annotated[dt.datetime, Field(alias="from", description="Start of the range")],
        to: Annotated[dt.datetime, Field(description="End of the range (RFC 3339)")],
        duration: Annotated[
            int,
            Field(
                **bounds_of(booking_msg.GetAvailability, "duration_minutes"),
                description="Meeting length in minutes",
            ),
        ],
        ctx: Context,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.FreeSlots]:
        """The owner's free windows of at least 'duration' minutes inside [from, to)."""

        return await _as_owner(
            ctx, format, lambda call: cap.find_free_slots(call, from_, to, duration)
        )

    @mcp.tool(annotations=READ)
    @_renamed(**{"from": "from_"})
    async def list_bookings(
        ctx: Context,
        status: Annotated[
            booking_msg.BookingStatus | None, Field(description="Only bookings in this status")
        ] = None,
        from_: Annotated[
            dt.datetime | None, Field(alias="from", description="Starting at or after")
        ] = None,
        to: Annotated[dt.datetime | None, Field(description="Starting before")] = None,
        limit: Annotated[
            int, Field(**bounds_of(booking_msg.ListBookings, "limit"), description="Page size")
        ] = 50,
        cursor: Annotated[
            str | None,
            Field(
                **bounds_of(booking_msg.ListBookings, "cursor"),
                description="next_cursor of the previous page",
            ),
        ] = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.BookingPage]:
        """The owner's bookings, latest start first."""

        async def work() -> cap.BookingPage:
            call = await owner_caller(ctx)
            return await cap.list_bookings(call, status, from_, to, limit, cursor)

        return await _answer(format, work())

    @mcp.tool(annotations=READ)
    async def get_booking(
        booking_id: BookingIdArg, ctx: Context, format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.BookingDetail]:
        """One of the owner's bookings."""

        return await _as_owner(ctx, format, lambda call: cap.get_booking(call, booking_id))

    @mcp.tool(annotations=CREATE)
    async def confirm_booking(
        booking_id: BookingIdArg, ctx: Context, format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.BookingDetail]:
        """Confirm a pending booking: writes the calendar event. Still 'pending' when it is
        not recorded at once: it turns 'confirmed' shortly."""

        return await _as_owner(ctx, format, lambda call: cap.confirm_booking(call, booking_id))

    @mcp.tool(annotations=END)
    async def decline_booking(
        booking_id: BookingIdArg, ctx: Context, reason: Reason = "", format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.BookingDetail]:
        """Decline a pending booking: it ends and its slot is free again."""

        return await _as_owner(
            ctx, format, lambda call: cap.decline_booking(call, booking_id, reason)
        )

    @mcp.tool(annotations=END)
    async def cancel_booking(
        booking_id: BookingIdArg, ctx: Context, reason: Reason = "", format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.BookingDetail]:
        """Cancel a booking: the calendar event is deleted and the slot is free at once."""

        return await _as_owner(
            ctx, format, lambda call: cap.cancel_booking(call, booking_id, reason)
        )

    @mcp.tool(annotations=CHANGE)
    async def reschedule_booking(
        booking_id: BookingIdArg,
        start: Moment,
        end: Moment,
        ctx: Context,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.BookingDetail]:
        """Move a booking to new times: the same booking (same id), its calendar event
        moved, its previous times in 'history'; 'pending' when the new slot needs the
        owner's confirmation. The new slot obeys a new booking's rules (a taken one is
        refused with the clash and the next free slots); moving it to the same times again
        changes nothing."""

        return await _as_owner(
            ctx, format, lambda call: cap.reschedule_booking(call, booking_id, start, end)
        )


def _account_tools(mcp: MCPServer) -> None:
    # --- calendars, callers, policies, dashboard, activity ----------------------------------

    @mcp.tool(annotations=READ)
    async def list_calendars(
        ctx: Context, format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.Connections]:
        """The connected calendar providers with their calendars, status and last sync."""

        return await _as_owner(ctx, format, cap.list_calendars)

    @mcp.tool(annotations=READ)
    async def list_callers(
        ctx: Context, format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.CallerList]:
        """The people and agents the owner described, with their trust levels."""

        return await _as_owner(ctx, format, cap.list_callers)

    @mcp.tool(annotations=CHANGE)
    async def upsert_caller(
        email: Annotated[str, Field(min_length=3, max_length=320, description="Their e-mail")],
        ctx: Context,
        display_name: Annotated[str | None, Field(max_length=400)] = None,
        trust_level: Annotated[
            policies.TrustLevel | None,
            Field(description="trusted, standard, restricted or blocked (always denied)"),
        ] = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, policies.CallerInfo]:
        """Describe a caller by e-mail: created, or changed when one has that e-mail
        (fields left out are kept). Bookings are decided by the caller's trust level."""

        async def work() -> policies.CallerInfo:
            level = trust_level.value if trust_level is not None else None
            return await cap.upsert_caller(await owner_caller(ctx), email, display_name, level)

        return await _answer(format, work())

    @mcp.tool(annotations=READ)
    async def list_policies(
        ctx: Context, format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.PolicyList]:
        """The owner's booking policies in evaluation order."""

        return await _as_owner(ctx, format, cap.list_policies)

    @mcp.tool(annotations=CREATE)
    async def create_policy(
        name: Annotated[str, Field(min_length=1, max_length=400, description="A label")],
        condition_type: Annotated[
            policies.ConditionType,
            Field(
                description="caller_domain (a domain, or internal/external), caller_email, "
                "caller_trust_level, duration_over (minutes), weekday (mon..sun list), "
                "outside_hours (HH:MM-HH:MM local)"
            ),
        ],
        condition_value: Annotated[str, Field(max_length=400, description="See condition_type")],
        action: Annotated[
            policies.PolicyAction, Field(description="allow, deny or require_confirmation")
        ],
        ctx: Context,
        priority: Annotated[
            int,
            Field(
                ge=-policies.MAX_PRIORITY,
                le=policies.MAX_PRIORITY,
                description="Higher is evaluated first; ties oldest first",
            ),
        ] = 0,
        enabled: bool = True,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, policies.PolicyInfo]:
        """Create a booking policy: the first enabled policy that matches decides a booking;
        none matching allows it."""

        async def work() -> policies.PolicyInfo:
            return await cap.create_policy(
                await owner_caller(ctx),
                name,
                condition_type.value,
                condition_value,
                action.value,
                priority,
                enabled,
            )

        return await _answer(format, work())

    @mcp.tool(annotations=READ)
    async def get_dashboard(
        ctx: Context, format: Format = "toon"
    ) -> Annotated[CallToolResult, cap.DashboardSummary]:
        """Plan, limits and usage; connected calendars; the ten latest activity items."""

        async def work() -> cap.DashboardSummary:
            # like GET /api/v1/dashboard/summary: reachable at the daily limit, not counted
            return await cap.dashboard(await owner_caller(ctx, count=False))

        return await _answer(format, work())

    @mcp.tool(annotations=READ)
    async def list_activity(
        ctx: Context,
        limit: Annotated[
            int, Field(**bounds_of(identity_msg.ListActivity, "limit"), description="Page size")
        ] = 50,
        cursor: Annotated[
            str | None,
            Field(
                **bounds_of(identity_msg.ListActivity, "cursor"),
                description="next_cursor of the previous page",
            ),
        ] = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, cap.ActivityFeed]:
        """Recent activity on the owner's account, newest first."""

        return await _as_owner(ctx, format, lambda call: cap.list_activity(call, limit, cursor))


def _about(model: type[BaseModel], name: str) -> Any:
    """The description an input model of :mod:`gateway.temporal` gives its field ``name``."""
    return Field(description=model.model_fields[name].description or name)


async def _pure(
    fmt: str, model: type[BaseModel], arguments: dict[str, Any], run: Callable[[Any], BaseModel]
) -> CallToolResult:
    """Validate ``arguments`` with the time tool's input model, then ``run`` it."""

    async def work() -> BaseModel:
        try:
            checked = model.model_validate(arguments)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ToolRefusal(f"{where}: {first['msg']}", "invalid_arguments") from exc
        try:
            answer: BaseModel = run(checked)
        except temporal.TemporalError as exc:
            raise ToolRefusal(str(exc), "invalid_time") from exc
        return answer

    return await _answer(fmt, work())


def _time_tools(mcp: MCPServer) -> None:
    """The five time tools: pure (no key, no service, no limit), from :mod:`gateway.temporal`."""
    pure = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False))
    async def get_temporal_context(
        timezone: Annotated[str | None, _about(temporal.TemporalContextInput, "timezone")] = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, temporal.TemporalContext]:
        """Now: the current instant in UTC and in 'timezone', its offset and whether DST is
        on, and the zone's next DST transition. Call this before reasoning about 'today',
        'tomorrow' or 'next week'."""
        return await _pure(
            format,
            temporal.TemporalContextInput,
            {"timezone": timezone},
            lambda a: temporal.get_temporal_context(a.timezone, dt.datetime.now(dt.UTC)),
        )

    @mcp.tool(annotations=pure)
    async def convert_timezone(
        datetime: Annotated[str, _about(temporal.ConvertTimezoneInput, "datetime")],
        to_zone: Annotated[str, _about(temporal.ConvertTimezoneInput, "to_zone")],
        from_zone: Annotated[str | None, _about(temporal.ConvertTimezoneInput, "from_zone")] = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, temporal.ConvertedTime]:
        """The same instant in another time zone (a wall time without an offset is read in
        from_zone, DST gaps and overlaps resolved and reported)."""
        return await _pure(
            format,
            temporal.ConvertTimezoneInput,
            {"datetime": datetime, "to_zone": to_zone, "from_zone": from_zone},
            lambda a: temporal.convert_timezone(a.datetime, a.to_zone, a.from_zone),
        )

    @mcp.tool(annotations=pure)
    async def compute_duration(
        start: Annotated[str, _about(temporal.ComputeDurationInput, "start")],
        end: Annotated[str, _about(temporal.ComputeDurationInput, "end")],
        timezone: Annotated[str | None, _about(temporal.ComputeDurationInput, "timezone")] = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, temporal.Duration]:
        """The exact elapsed time between two instants, in units and in words, and the
        wall-clock difference when a DST change lies between them."""
        return await _pure(
            format,
            temporal.ComputeDurationInput,
            {"start": start, "end": end, "timezone": timezone},
            lambda a: temporal.compute_duration(a.start, a.end, a.timezone),
        )

    @mcp.tool(annotations=pure)
    async def adjust_timestamp(
        timestamp: Annotated[str, _about(temporal.AdjustTimestampInput, "timestamp")],
        amount: Annotated[int, _about(temporal.AdjustTimestampInput, "amount")],
        unit: Annotated[temporal.Unit, _about(temporal.AdjustTimestampInput, "unit")],
        timezone: Annotated[str, _about(temporal.AdjustTimestampInput, "timezone")],
        format: Format = "toon",
    ) -> Annotated[CallToolResult, temporal.AdjustedTime]:
        """Add (or subtract) an amount of time, DST-aware: calendar units keep the local
        time of day, exact units add elapsed time."""
        arguments = {"timestamp": timestamp, "amount": amount, "unit": unit, "timezone": timezone}
        return await _pure(
            format,
            temporal.AdjustTimestampInput,
            arguments,
            lambda a: temporal.adjust_timestamp(a.timestamp, a.amount, a.unit, a.timezone),
        )

    @mcp.tool(annotations=pure)
    async def expand_rrule(
        rrule: Annotated[str, _about(temporal.ExpandRruleInput, "rrule")],
        dtstart: Annotated[str, _about(temporal.ExpandRruleInput, "dtstart")],
        timezone: Annotated[str, _about(temporal.ExpandRruleInput, "timezone")],
        count: Annotated[int | None, _about(temporal.ExpandRruleInput, "count")] = None,
        until: Annotated[str | None, _about(temporal.ExpandRruleInput, "until")] = None,
        format: Format = "toon",
    ) -> Annotated[CallToolResult, temporal.Occurrences]:
        """The occurrences of a recurrence rule (RFC 5545 RRULE) in a time zone: send count
        or until (at most 1000 occurrences)."""
        arguments = {
            "rrule": rrule,
            "dtstart": dtstart,
            "timezone": timezone,
            "count": count,
            "until": until,
        }
        return await _pure(
            format,
            temporal.ExpandRruleInput,
            arguments,
            lambda a: temporal.expand_rrule(a.rrule, a.dtstart, a.timezone, a.count, a.until),
        )


def mount_mcp(app: FastAPI, settings: GatewaySettings) -> MCPServer:
    """Serve the MCP server at ``/mcp`` on ``app``; the app's lifespan must run
    ``mcp.session_manager.run()``."""
    mcp = build_mcp()
    sub = mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(settings),
    )
    app.router.routes.extend(sub.routes)
    return mcp
