from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from contracts import calendars as msg
from contracts import formats, identity
from gateway import capabilities, consistency
from gateway.capabilities import Connections
from gateway.deps import PublicCaller, TenantCaller
from gateway.errors import documented, documented_beside
from gateway.oauth_binding import PAGE_HEADERS, OAuthBinding, consent_page, cookie_name, not_bound
from gateway.params import CalendarId, OAuthProvider, Printable, ProviderName
from gateway.routes.identity import public_base

router = APIRouter(prefix="/api/v1/calendars", tags=["calendars"])


class CaldavBody(BaseModel):
    server_url: str = Field(
        max_length=2048,
        examples=["https://caldav.example.com/dav/"],
        json_schema_extra={"format": "uri", "pattern": "^https?://"},
    )
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class CalendarChoice(BaseModel):
    contributes_to_availability: bool | None = None
    receives_bookings: bool | None = None


class Disconnected(BaseModel):
    provider: msg.Provider
    disconnected: bool = True


class AuthorizationUrl(BaseModel):
    authorization_url: str


@router.get("", response_model=Connections, responses=documented(401))
async def list_connections(call: TenantCaller) -> Connections:
    """Connected providers with their calendars, status and last sync."""
    return await capabilities.list_calendars(call)


@router.post(
    "/caldav",
    status_code=201,
    response_model=msg.ConnectionInfo,
    responses=documented(400, 401, 409, 502),
)
async def connect_caldav(body: CaldavBody, call: TenantCaller) -> msg.ConnectionInfo:
    """Check the URL, discover the account's calendars, then store the connection.

    Credentials the server rejects: 400. A server that cannot be reached or does not speak
    CalDAV: 502. Nothing is stored in either case.
    """
    reply = await call(
        msg.CONNECT_CALDAV,
        server_url=body.server_url,
        username=body.username,
        password=body.password,
    )
    await consistency.calendars_changed(call, call.tenant_id)
    return reply.connection


@router.post("/sync", response_model=Connections, responses=documented(401))
async def sync(call: TenantCaller) -> Connections:
    """Sync every connection now."""
    reply = await call(msg.SYNC_NOW)
    await consistency.calendars_changed(call, call.tenant_id)
    return Connections(connections=reply.connections)


@router.put(
    "/calendars/{calendar_id}",
    response_model=msg.ConnectionInfo,
    responses=documented(400, 401, 404),
)
async def choose_calendar(
    calendar_id: CalendarId, body: CalendarChoice, call: TenantCaller
) -> msg.ConnectionInfo:
    """Whether a calendar counts for availability, and whether it receives bookings (one does)."""
    reply = await call(
        msg.UPDATE_CALENDAR,
        calendar_id=calendar_id[:100],
        contributes_to_availability=body.contributes_to_availability,
        receives_bookings=body.receives_bookings,
    )
    await consistency.calendars_changed(call, call.tenant_id)
    return reply.connection


def _callback_url(request: Request, provider: str) -> str:
    return f"{public_base(request)}/api/v1/calendars/{provider}/callback"


def _binding(request: Request) -> OAuthBinding:
    binding: OAuthBinding = request.app.state.oauth_binding
    return binding


def _cookie_path(provider: str, step: str) -> str:
    return f"/api/v1/calendars/{provider}/{step}"


@router.get(
    "/{provider:oauth_provider}/connect",
    response_model=AuthorizationUrl,
    responses=documented(400, 401, 404),
)
async def connect_oauth(
    provider: OAuthProvider, request: Request, call: TenantCaller
) -> AuthorizationUrl:
    """A link for ``google`` or ``outlook`` (OAuth 2.0 with state and PKCE), to open in the
    account owner's own browser within 10 minutes: it names the Cortex account the calendar
    will be connected to, then goes on to the provider. Only the browser that went through
    the link can complete the connection (see ``/authorize`` and ``/callback``)."""
    started = await call(
        msg.START_OAUTH, provider=provider[:40], redirect_uri=_callback_url(request, provider[:40])
    )
    ticket = _binding(request).issue_ticket(
        started.state, provider, started.authorization_url, call.tenant_id or ""
    )
    link = f"{public_base(request)}/api/v1/calendars/{provider}/authorize?ticket={ticket}"
    return AuthorizationUrl(authorization_url=link)


@router.get(
    "/{provider:oauth_provider}/authorize",
    response_class=HTMLResponse,
    responses={
        200: {"description": "The page naming the account; sets the confirmation cookie"},
        302: {"description": "To the provider, with the cookie that binds the flow"},
        **documented_beside(400, 404),
    },
)
async def authorize_oauth(
    provider: OAuthProvider,
    request: Request,
    call: PublicCaller,
    # a ticket is ~1 KB (the provider's URL signed); 8192 made Schemathesis' coverage phase
    # spend a minute on strings of that length
    ticket: Annotated[str, Query(min_length=1, max_length=4096), Printable],
    confirmed: bool = False,
) -> Response:
    """The link ``/connect`` answers, opened in a browser: a page naming the Cortex account
    the calendar will be connected to; its Continue link (``confirmed=true``, followed from
    that page) sets an HttpOnly cookie bound to this flow and redirects to the provider."""
    binding = _binding(request)
    opened = binding.open_ticket(ticket, provider)
    secure = public_base(request).startswith("https://")
    max_age = max(1, opened.expires_at - int(time.time()))
    seen = request.cookies.get(cookie_name("confirm", provider))
    if confirmed and binding.cookie_matches("confirm", provider, opened.state, seen):
        redirect = RedirectResponse(opened.provider_url, status_code=302)
        redirect.set_cookie(
            cookie_name("bind", provider),
            binding.cookie("bind", opened),
            max_age=max_age,
            path=_cookie_path(provider, "callback"),
            secure=secure,
            httponly=True,
            samesite="lax",  # sent back with the provider's redirect (a top-level GET)
        )
        return redirect
    owner = (await call.for_tenant(opened.tenant_id)(identity.GET_SETTINGS)).settings
    continue_url = f"{public_base(request)}{request.url.path}?ticket={ticket}&confirmed=true"
    page = HTMLResponse(
        consent_page(provider, owner.display_name, owner.email, continue_url),
        headers=PAGE_HEADERS,
    )
    page.set_cookie(
        cookie_name("confirm", provider),
        binding.cookie("confirm", opened),
        max_age=max_age,
        path=_cookie_path(provider, "authorize"),
        secure=secure,
        httponly=True,
        samesite="strict",  # never sent when another site links or redirects here
    )
    return page


@router.get(
    "/{provider:oauth_provider}/callback",
    response_model=msg.ConnectionInfo,
    responses=documented(400, 403, 404, 502),
)
async def oauth_callback(
    provider: OAuthProvider,
    request: Request,
    response: Response,
    call: PublicCaller,
    code: Annotated[str, Query(min_length=1, max_length=4096), Printable],
    state: Annotated[
        str,
        Query(min_length=1, max_length=200, pattern=formats.BASE64URL),
        Printable,
    ],
) -> msg.ConnectionInfo:
    """Where the provider sends the browser back. The state names the tenant, and the
    browser must hold the cookie ``/authorize`` bound to that state: without it, 403
    ``oauth_browser_mismatch`` and nothing is connected."""
    bound = request.cookies.get(cookie_name("bind", provider))
    if not _binding(request).cookie_matches("bind", provider, state, bound):
        raise not_bound()
    reply = await call(msg.COMPLETE_OAUTH, provider=provider[:40], code=code, state=state)
    response.delete_cookie(cookie_name("bind", provider), path=_cookie_path(provider, "callback"))
    await consistency.calendars_changed(call, reply.tenant_id)  # the tenant the state named
    return reply.connection


@router.delete(
    "/{provider:provider}", response_model=Disconnected, responses=documented(400, 401, 404)
)
async def disconnect(provider: ProviderName, call: TenantCaller) -> Disconnected:
    """Remove the connection, its secrets and its synced events (google, outlook or caldav)."""
    reply = await call(msg.DISCONNECT, provider=provider[:40])
    await consistency.calendars_changed(call, call.tenant_id)
    return Disconnected(provider=reply.provider)
