from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from contracts import calendars as msg
from gateway import consistency
from gateway.deps import PublicCaller, TenantCaller
from gateway.errors import documented
from gateway.params import PathText, Printable
from gateway.routes.identity import public_base

router = APIRouter(prefix="/api/v1/calendars", tags=["calendars"])


class Connections(BaseModel):
    connections: list[msg.ConnectionInfo]


class CaldavBody(BaseModel):
    server_url: str = Field(max_length=2048, examples=["https://caldav.example.com/dav/"])
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
    return Connections(connections=(await call(msg.LIST_CONNECTIONS)).connections)


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
    calendar_id: PathText, body: CalendarChoice, call: TenantCaller
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


@router.get("/{provider}/connect", response_model=AuthorizationUrl, responses=documented(400, 401))
async def connect_oauth(
    provider: PathText, request: Request, call: TenantCaller
) -> AuthorizationUrl:
    """The OAuth 2.0 authorization URL for ``google`` or ``outlook`` (state and PKCE)."""
    started = await call(
        msg.START_OAUTH, provider=provider[:40], redirect_uri=_callback_url(request, provider[:40])
    )
    return AuthorizationUrl(authorization_url=started.authorization_url)


@router.get(
    "/{provider}/callback", response_model=msg.ConnectionInfo, responses=documented(400, 502)
)
async def oauth_callback(
    provider: PathText,
    call: PublicCaller,
    code: Annotated[str, Query(min_length=1, max_length=4096), Printable],
    state: Annotated[str, Query(min_length=1, max_length=200), Printable],
) -> msg.ConnectionInfo:
    """Where the provider sends the user back: the state names the tenant."""
    reply = await call(msg.COMPLETE_OAUTH, provider=provider[:40], code=code, state=state)
    await consistency.calendars_changed(call, reply.tenant_id)  # the tenant the state named
    return reply.connection


@router.delete("/{provider}", response_model=Disconnected, responses=documented(400, 401, 404))
async def disconnect(provider: PathText, call: TenantCaller) -> Disconnected:
    """Remove the connection, its secrets and its synced events (google, outlook or caldav)."""
    reply = await call(msg.DISCONNECT, provider=provider[:40])
    await consistency.calendars_changed(call, call.tenant_id)
    return Disconnected(provider=reply.provider)
