"""What calendars' integration tests share: Radicale calendars, the database, identity's events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import httpx

from contracts import identity, subjects
from contracts.envelope import Message
from contracts.rpc import EventSpec
from cortex_dev.pytest_plugin import CaldavAccount
from cortex_runtime.broker import build_broker, ensure_stream, event_stream, publish_raw

T = TypeVar("T")

StartCalendars = Callable[..., None]


def calendars_env(database_url: str, nats_url: str) -> dict[str, str]:
    return {
        "CORTEX_ENV": "test",
        "CORTEX_NATS_URL": nats_url,
        "CORTEX_CALENDARS_DATABASE_URL": database_url,
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


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def eventually(check: Callable[[], Awaitable[T]], what: str, timeout: float = 15) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout}s (last: {result!r})")
        await asyncio.sleep(0.1)


async def publish_events(nats_url: str, *items: tuple[EventSpec[Any], Message]) -> None:
    """Publish events as identity's outbox relay would (its stream, Nats-Msg-Id)."""
    broker = build_broker(nats_url, "calendars-tests-publisher")
    await broker.connect()
    try:
        await ensure_stream(broker, event_stream(subjects.IDENTITY))
        for spec, event in items:
            await publish_raw(
                broker,
                spec.subject,
                event.model_dump_json().encode(),
                {"Nats-Msg-Id": event.message_id},
            )
    finally:
        await broker.stop()


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
