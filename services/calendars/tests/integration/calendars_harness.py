"""What calendars' integration tests share beyond cortex_dev.pytest_plugin: the processes'
env, Radicale calendars and identity's settings of an owner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from contracts import calendars as msg
from contracts import identity
from cortex_dev.pytest_plugin import CaldavAccount
from cortex_runtime.client import RpcClient

StartCalendars = Callable[..., None]


def calendars_env() -> dict[str, str]:
    """Calendars' settings here, on top of its database and NATS."""
    return {
        "CORTEX_CALENDARS_ALLOWED_PRIVATE_NETWORKS": "127.0.0.1/32",
        "CORTEX_CALENDARS_HTTP_TIMEOUT_SECONDS": "5",
    }


async def make_calendar(account: CaldavAccount, name: str = "work") -> str:
    url = f"{account.url}{account.username}/{name}/"
    body = (
        '<?xml version="1.0"?><mkcol xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<set><prop><resourcetype><collection/><C:calendar/></resourcetype>"
        f"<displayname>{name}</displayname></prop></set></mkcol>"
    )
    async with httpx.AsyncClient(auth=(account.username, account.password)) as client:
        response = await client.request("MKCOL", url, content=body)
        assert response.status_code == 201, response.text
    return url


async def connect_caldav(
    rpc: RpcClient, tenant_id: str, account: CaldavAccount
) -> msg.ConnectionReply:
    """Connect the account's CalDAV server for the tenant (calendars' own command)."""
    return await rpc.call(
        msg.CONNECT_CALDAV,
        msg.ConnectCaldav(
            tenant_id=tenant_id,
            server_url=account.url,
            username=account.username,
            password=account.password,
        ),
    )


async def put_ics(account: CaldavAccount, calendar_url: str, name: str, ics: str) -> None:
    async with httpx.AsyncClient(auth=(account.username, account.password)) as client:
        response = await client.put(
            f"{calendar_url}{name}.ics", content=ics, headers={"Content-Type": "text/calendar"}
        )
        assert response.status_code in (201, 204), response.text


async def calendar_listing(account: CaldavAccount, calendar_url: str) -> str:
    async with httpx.AsyncClient(auth=(account.username, account.password)) as client:
        response = await client.request("PROPFIND", calendar_url, headers={"Depth": "1"})
    return response.text


def owner_settings(
    tenant_id: str, timezone: str, version: int, at: datetime | None = None
) -> identity.TenantSettings:
    return identity.TenantSettings(
        tenant_id=tenant_id,
        email=f"{tenant_id}@example.com",
        display_name="Owner",
        slug=None,
        open_scheduling=False,
        user_type=identity.UserType.INDIVIDUAL,
        timezone=timezone,
        working_hours={},
        booking_rules=identity.BookingRules(),
        updated_at=at or datetime.now(UTC),
        version=version,
    )
