"""A2A on every public page: the agent card and one JSON-RPC 2.0 endpoint per page.

``GET /public/{slug}/.well-known/agent-card.json`` is the page's agent card: an A2A card
(a2a-sdk's ``AgentCard``, served as the SDK serves it, with the v0.3 fields beside the
1.0 ones) whose interface is this page's endpoint, with the skills ``query_availability``
and ``book_slot``.

``POST /public/{slug}/a2a`` answers two kinds of JSON-RPC 2.0 calls:

* Temporal Cortex's methods, ``query_availability {date, duration?, timezone?}`` and
  ``book_slot {start, end, title, attendee_email, attendee_name?, description?}``: the
  result is the REST answer's JSON;
* the standard A2A methods (``SendMessage`` with the header ``A2A-Version: 1.0``, ...),
  through a2a-sdk's dispatcher and request handler: a message whose data part names a
  ``skill`` (or whose metadata does) and holds its arguments (beside ``skill`` or under
  ``arguments``) is answered with a message whose data part is the same result, or
  ``{"error": {...}}``, the very error object the method would have answered.

This is a door: the rules are in :mod:`gateway.capabilities` and the services behind, the
same code the REST routes run. Here are only the JSON-RPC shapes:

* a conflict is ``-32001`` with ``data.reason`` ``"slot_conflict"`` (and booking's details:
  the clashing event, the next free slots); another refusal of the booking is ``-32001``
  with booking's code as the reason; bad params ``-32602`` (``data.param`` and
  ``data.problem``); unknown method ``-32601``; malformed JSON ``-32700``; not a JSON-RPC
  request ``-32600``; a plan limit or a policy ``-32002``; a service down or late
  ``-32003`` (``data.retry_after``);
* a rate limit is HTTP 429 with ``Retry-After`` and the error ``-32029``
  (``data.retry_after``), counted per client IP exactly as the REST routes count:
  ``book_slot`` (either way) against the booking limit, every other request to the page
  (the card included) against the availability limit;
* a page that is not public (unknown slug, Open Scheduling off) is the REST 404, the same
  answer either way, before anything else is looked at.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Annotated, Any, Final

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes.common import ServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    Message,
    Part,
    Role,
    SendMessageRequest,
)
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0
from a2a.utils.errors import UnsupportedOperationError
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

# no stubs for protobuf here (types-protobuf is not a dependency)
from google.protobuf.json_format import (  # type: ignore[import-untyped]
    MessageToDict,
    ParseDict,
    ParseError,
)
from google.protobuf.struct_pb2 import Value  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts import booking as msg
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway import capabilities
from gateway.deps import Caller, PublicCaller
from gateway.errors import STATUS_OF_KIND, documented, error_response, retry_after_seconds
from gateway.limits import RateLimited, limited
from gateway.params import PageSlug, Printable, bounds_of
from gateway.routes.identity import public_base

log = logging.getLogger(__name__)

router = APIRouter(prefix="/public", tags=["a2a"])

QUERY_AVAILABILITY: Final = "query_availability"
BOOK_SLOT: Final = "book_slot"

# JSON-RPC error codes (-32000..-32099 are the server's own)
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
CONFLICT: Final = -32001
REFUSED: Final = -32002
UNAVAILABLE: Final = -32003
NOT_FOUND: Final = -32004
RATE_LIMITED: Final = -32029


# --- the methods' params --------------------------------------------------------------


class AvailabilityParams(BaseModel):
    """``query_availability``: what ``GET /public/{slug}/availability`` takes."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(ge=msg.FIRST_DAY, le=msg.LAST_DAY, description="YYYY-MM-DD")
    duration: int | None = Field(
        default=None, **bounds_of(msg.GetAvailability, "duration_minutes"), description="minutes"
    )
    timezone: Annotated[str | None, Printable] = Field(
        default=None,
        **bounds_of(msg.GetAvailability, "timezone"),
        description="IANA zone the slots' offsets are in",
    )


class BookSlotParams(capabilities.BookingIn):
    """``book_slot``: the body of ``POST /public/{slug}/book``."""

    model_config = ConfigDict(extra="forbid")


PARAMS: Final[dict[str, type[BaseModel]]] = {
    QUERY_AVAILABILITY: AvailabilityParams,
    BOOK_SLOT: BookSlotParams,
}
LIMIT_OF: Final = {QUERY_AVAILABILITY: "availability", BOOK_SLOT: "book"}


class RpcError(Exception):
    """A JSON-RPC error object (and the HTTP status it is sent with)."""

    def __init__(
        self,
        code: int,
        message: str,
        data: dict[str, Any] | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.status = status
        self.headers = headers

    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def _invalid_params(exc: ValidationError) -> RpcError:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ())) or "params"
    problem = str(first.get("msg", "invalid"))
    problems = [
        {"param": ".".join(str(p) for p in e.get("loc", ())) or "params", "problem": e["msg"]}
        for e in exc.errors()[:10]
    ]
    return RpcError(
        INVALID_PARAMS,
        f"Invalid params: {param}: {problem}.",
        {"reason": "invalid_params", "param": param, "problem": problem, "problems": problems},
    )


def _service_error(exc: ServiceError) -> RpcError:
    """A service's refusal as a JSON-RPC error (HTTP 404 for a page that is not public)."""
    reply = exc.reply
    details = dict(reply.details)
    if reply.kind is ErrorKind.NOT_FOUND:
        # over HTTP the page's REST 404 (_rpc_response); in a SendMessage answer this object
        # (the page closed after the request was let in)
        return RpcError(NOT_FOUND, reply.message, {"reason": reply.code}, status=404)
    if reply.kind is ErrorKind.INVALID:
        param = str(details.pop("param", "params"))
        return RpcError(
            INVALID_PARAMS,
            reply.message,
            {"reason": reply.code, "param": param, "problem": reply.message, **details},
        )
    if reply.kind is ErrorKind.CONFLICT:
        reason = "slot_conflict" if reply.code == "slot_unavailable" else reply.code
        return RpcError(CONFLICT, reply.message, {"reason": reason, "code": reply.code, **details})
    if reply.kind in (ErrorKind.PAYMENT_REQUIRED, ErrorKind.FORBIDDEN):
        return RpcError(REFUSED, reply.message, {"reason": reply.code, **details})
    if reply.kind is ErrorKind.RATE_LIMITED:
        return RpcError(RATE_LIMITED, reply.message, {"reason": reply.code, **details}, 429)
    if reply.kind in (ErrorKind.UPSTREAM, ErrorKind.UNAVAILABLE):
        return RpcError(
            UNAVAILABLE, reply.message, {"reason": reply.code, "retry_after": 1, **details}
        )
    status = STATUS_OF_KIND.get(reply.kind, 500)
    log.error("a2a: unexpected service error", extra={"code": reply.code, "status": status})
    return RpcError(INTERNAL_ERROR, "Internal error.", {"reason": reply.code})


# --- the capabilities, once for both kinds of call -------------------------------------


def _caller(request: Request) -> Caller:
    return Caller(request.app.state.rpc, request.state.request_id, None)


async def run_skill(request: Request, slug: str, skill: str, arguments: Any) -> dict[str, Any]:
    """Run ``skill`` with ``arguments`` on page ``slug``: the JSON result, or RpcError."""
    model = PARAMS.get(skill)
    if model is None:
        raise RpcError(
            METHOD_NOT_FOUND,
            f"Method not found: {skill}. This page answers {QUERY_AVAILABILITY} and {BOOK_SLOT}.",
        )
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise RpcError(
            INVALID_PARAMS,
            "Invalid params: params must be an object (by name).",
            {"reason": "invalid_params", "param": "params", "problem": "must be an object"},
        )
    try:
        params = model.model_validate(arguments)
    except ValidationError as exc:
        raise _invalid_params(exc) from None
    call = _caller(request)
    try:
        if isinstance(params, AvailabilityParams):
            found = await capabilities.public_availability(
                call, slug, params.date, params.duration, params.timezone
            )
            return found.model_dump(mode="json")
        assert isinstance(params, BookSlotParams)
        booked = await capabilities.request_booking(call, request.app, slug, params)
        return booked.model_dump(mode="json")
    except ServiceError as exc:
        raise _service_error(exc) from None


# --- the agent card ---------------------------------------------------------------------

SKILLS: Final = (
    AgentSkill(
        id=QUERY_AVAILABILITY,
        name="Query availability",
        description=(
            "Free slots on one day. Arguments: date (YYYY-MM-DD, required), duration "
            "(minutes, 5-720, default the owner's), timezone (IANA zone for the slots' "
            "offsets, default the owner's). Returns {slug, date, timezone, duration, "
            "slots: [{start, end}]}."
        ),
        tags=["scheduling", "availability", "calendar"],
        examples=['{"skill": "query_availability", "date": "2026-03-10", "duration": 30}'],
        input_modes=["application/json"],
        output_modes=["application/json"],
    ),
    AgentSkill(
        id=BOOK_SLOT,
        name="Book a slot",
        description=(
            "Book a meeting. Arguments: start and end (ISO 8601 with offset), title, "
            "attendee_email (required), attendee_name, description. Returns the booking "
            "{booking_id, status, start, end, title, attendee_email, calendar_event}, or "
            "{booking_id, status: processing, status_url} while it is still being made. "
            "A taken slot is the error -32001 with data.reason slot_conflict, the clashing "
            "event and the next free slots."
        ),
        tags=["scheduling", "booking", "calendar"],
        examples=[
            '{"skill": "book_slot", "start": "2026-03-10T09:00:00Z", '
            '"end": "2026-03-10T09:30:00Z", "title": "Intro call", '
            '"attendee_email": "guest@example.org"}'
        ],
        input_modes=["application/json"],
        output_modes=["application/json"],
    ),
)


def agent_card(base_url: str, slug: str) -> AgentCard:
    """The agent card of page ``slug``, its endpoint under ``base_url``."""
    page = f"{base_url.rstrip('/')}/public/{slug}"
    return AgentCard(
        name=f"Cortex scheduling: {slug}",
        description=(
            f"Books meetings on {slug}'s calendar: query_availability for free slots, "
            "book_slot to book one (JSON-RPC methods of the same names, or SendMessage "
            "with a data part naming the skill)."
        ),
        # one endpoint, both versions (the 0.3 methods through the SDK's compat adapter);
        # a 0.3 interface also makes the card carry 0.3's fields (url, protocolVersion)
        supported_interfaces=[
            AgentInterface(url=f"{page}/a2a", protocol_binding="JSONRPC", protocol_version=v)
            for v in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        ],
        provider=AgentProvider(organization="Cortex", url=base_url.rstrip("/")),
        version="1.0.0",
        documentation_url=f"{base_url.rstrip('/')}/docs",
        capabilities=AgentCapabilities(streaming=False, push_notifications=False),
        default_input_modes=["application/json"],
        default_output_modes=["application/json"],
        skills=list(SKILLS),
    )


def card_json(base_url: str, slug: str) -> dict[str, Any]:
    """The card as a2a-sdk serves a card (1.0 fields, and the v0.3 ones beside them)."""
    return agent_card_to_dict(agent_card(base_url, slug))


# --- SendMessage: a2a-sdk's dispatcher and handler, the skills as its executor -------------

REQUEST_KEY: Final = "cortex_request"
SLUG_KEY: Final = "cortex_slug"


class _ContextBuilder(ServerCallContextBuilder):
    """The SDK's call context, with the HTTP request and the page's slug for the skills."""

    def build(self, request: Request) -> ServerCallContext:
        return ServerCallContext(
            state={
                "headers": dict(request.headers),
                REQUEST_KEY: request,
                SLUG_KEY: request.path_params["slug"],
            }
        )


def skill_call(message: Message) -> tuple[str | None, Any]:
    """The skill a message asks for and its arguments: the first data part that is an
    object; the skill named in it (``skill``) or in the message's metadata; the arguments
    under ``arguments`` (or ``params``), else the data part's other keys."""
    data: dict[str, Any] | None = None
    for part in message.parts:
        if part.HasField("data"):
            value = MessageToDict(part.data)
            if isinstance(value, dict):
                data = value
                break
    metadata = MessageToDict(message.metadata) if message.HasField("metadata") else {}
    skill = (data or {}).get("skill") or metadata.get("skill")
    if data is None:
        return (skill if isinstance(skill, str) else None), None
    arguments = data.get("arguments", data.get("params"))
    if arguments is None:
        arguments = {k: v for k, v in data.items() if k != "skill"}
    return (skill if isinstance(skill, str) else None), arguments


def _data_part(value: dict[str, Any]) -> Part:
    data = Value()
    ParseDict(value, data)
    return Part(data=data, media_type="application/json")


class PageSkills(AgentExecutor):
    """Answers a message with one message (no task: nothing to keep between calls, so
    any replica answers any call)."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        state = context.call_context.state
        request: Request = state[REQUEST_KEY]
        skill, arguments = skill_call(context.message) if context.message else (None, None)
        parts: list[Part]
        try:
            if skill is None:
                raise RpcError(
                    INVALID_PARAMS,
                    f"Name the skill: a data part {{'skill': '{QUERY_AVAILABILITY}' or "
                    f"'{BOOK_SLOT}', ...its arguments}}.",
                    {"reason": "invalid_params", "param": "skill", "problem": "missing"},
                )
            if skill not in PARAMS:
                raise RpcError(
                    INVALID_PARAMS,
                    f"Unknown skill {skill!r}: this agent has {QUERY_AVAILABILITY} and "
                    f"{BOOK_SLOT}.",
                    {"reason": "invalid_params", "param": "skill", "problem": "unknown skill"},
                )
            result = await run_skill(request, state[SLUG_KEY], skill, arguments)
            parts = [_data_part(result)]
        except RpcError as exc:
            parts = [Part(text=exc.message), _data_part({"error": exc.error()})]
        await event_queue.enqueue_event(
            Message(
                message_id=uuid.uuid4().hex,
                role=Role.ROLE_AGENT,
                context_id=context.context_id or "",
                parts=parts,
            )
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise UnsupportedOperationError(message="Nothing to cancel: every answer is immediate.")


def _template_card() -> AgentCard:
    return agent_card("http://localhost", "page")


def make_dispatcher() -> JsonRpcDispatcher:
    handler = DefaultRequestHandler(
        agent_executor=PageSkills(), task_store=InMemoryTaskStore(), agent_card=_template_card()
    )
    return JsonRpcDispatcher(
        request_handler=handler, context_builder=_ContextBuilder(), enable_v0_3_compat=True
    )


# --- the HTTP side ----------------------------------------------------------------------


def _rpc_response(request_id: Any, exc: RpcError) -> Response:
    if exc.status == 404:
        return _not_found(exc.message)
    body = {"jsonrpc": "2.0", "id": request_id, "error": exc.error()}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def _not_found(message: str = "No public scheduling page here.") -> Response:
    return error_response(404, message, "page_not_found")


async def _admit(request: Request, route: str) -> None:
    """Count the request against the REST limit ``route`` (429 as RpcError)."""
    try:
        await limited(route)(request)
    except RateLimited as exc:
        raise RpcError(
            RATE_LIMITED,
            str(exc.detail),
            {
                "reason": "rate_limited",
                "retry_after": retry_after_seconds((exc.headers or {}).get("Retry-After")),
            },
            status=429,
            headers=dict(exc.headers or {}),
        ) from None


async def _public_page(request: Request, slug: str) -> None:
    """Nothing unless ``slug`` is an open page; else the REST 404 (as RpcError)."""
    try:
        await _caller(request)(msg.GET_PAGE, slug=slug)
    except ServiceError as exc:
        raise _service_error(exc) from None


def _sdk_skill(body: dict[str, Any]) -> str | None:
    """The skill a SendMessage asks for (as its executor will read it), for its limit."""
    params = body.get("params")
    if not isinstance(params, dict):
        return None
    try:
        parsed = ParseDict(params, SendMessageRequest(), ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError):
        return None
    return skill_call(parsed.message)[0]


@router.get(
    "/{slug}/.well-known/agent-card.json",
    summary="The page's A2A agent card",
    responses=documented(404, 429),
    dependencies=[Depends(limited("availability"))],
)
async def card(slug: PageSlug, request: Request, call: PublicCaller) -> Response:
    """An A2A agent card (a2a-sdk's ``AgentCard``) for this page: its JSON-RPC endpoint
    ``/public/{slug}/a2a`` and the skills ``query_availability`` and ``book_slot``. Its
    errors are the REST ones (404 ``page_not_found`` for a page that is not public)."""
    await call(msg.GET_PAGE, slug=slug)
    return JSONResponse(card_json(public_base(request), slug))


@router.post(
    "/{slug}/a2a",
    summary="The page's A2A / JSON-RPC 2.0 endpoint",
    responses={
        200: {
            "description": "A JSON-RPC 2.0 response: a result or an error object (its codes: "
            "docs/agents.md). A rate limit is an HTTP 429 with Retry-After whose body is "
            "the JSON-RPC error -32029.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **documented(404),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "A JSON-RPC 2.0 request: query_availability, book_slot, "
                        "SendMessage (with A2A-Version: 1.0), ...",
                        "required": ["jsonrpc", "method"],
                        "properties": {
                            "jsonrpc": {"const": "2.0"},
                            "method": {"type": "string"},
                            "params": {"type": "object"},
                            "id": {"type": ["string", "integer", "null"]},
                        },
                    }
                }
            },
        }
    },
)
async def endpoint(slug: PageSlug, request: Request) -> Response:
    """JSON-RPC 2.0: ``query_availability``, ``book_slot`` and the A2A methods
    (``SendMessage`` with ``A2A-Version: 1.0``)."""
    raw = await request.body()  # kept by the request: the SDK's dispatcher reads it again
    body: Any = None
    problem: RpcError | None = None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        problem = RpcError(PARSE_ERROR, f"Parse error: the body is not JSON ({exc}).")
    method = body.get("method") if isinstance(body, dict) else None
    if method == BOOK_SLOT or (method == "SendMessage" and _sdk_skill(body) == BOOK_SLOT):
        route = "book"
    else:
        route = "availability"
    request_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        request_id = None
    try:
        await _admit(request, route)
        await _public_page(request, slug)
        if problem is not None:
            raise problem
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
            raise RpcError(
                INVALID_REQUEST,
                "Invalid request: send one JSON-RPC 2.0 request object "
                '({"jsonrpc": "2.0", "method": ..., "params": {...}, "id": ...}).',
            )
        if not isinstance(method, str) or not method:
            raise RpcError(INVALID_REQUEST, "Invalid request: 'method' must be a string.")
        if method in PARAMS:
            result = await run_skill(request, slug, method, body.get("params"))
            return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result})
    except RpcError as exc:
        return _rpc_response(request_id, exc)
    dispatcher: JsonRpcDispatcher = request.app.state.a2a_dispatcher
    return await dispatcher.handle_requests(request)


def mount(app: FastAPI) -> None:
    """The A2A routes of every public page on ``app``."""
    app.state.a2a_dispatcher = make_dispatcher()
    app.include_router(router)


__all__ = ["PROTOCOL_VERSION_1_0", "agent_card", "card_json", "mount", "router", "skill_call"]
