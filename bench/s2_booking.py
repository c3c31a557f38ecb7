"""S2: bookings through the gateway for non-conflicting slots, the full saga, twice: for an
owner without a calendar (Cortex's own cost), and with a local CalDAV provider (the owner's
calendar on an embedded Radicale, read live and written to by every booking). Baseline: a
bare asyncpg INSERT into a table with the same exclusion constraint."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import Owner, check, row
from bench.load import run_load
from cortex_dev.embedded import Radicale, free_port

CONCURRENCY = 8
TOTAL = 200


def slot(i: int) -> tuple[datetime, datetime]:
    """The i-th distinct 30-minute slot: one per hour, from the day after tomorrow on."""
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = base + timedelta(days=2 + i // 24, hours=i % 24)
    return start, start + timedelta(minutes=30)


async def through_gateway(gateway: str, owner: Owner) -> dict[str, Any]:
    url = f"{gateway}/public/{owner.slug}/book"
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> str | None:
            start, end = slot(i)
            body = {"title": f"bench {i}", "start": start.isoformat(), "end": end.isoformat(),
                    "attendee_email": f"guest{i}@example.org"}  # fmt: skip
            response = await client.post(url, json=body)
            error = check(response, 201)
            if error is None and response.json().get("status") != "confirmed":
                return f"not_confirmed {response.text[:200]}"
            return error

        return (await run_load(one, concurrency=CONCURRENCY, total=TOTAL)).summary()


async def _baseline(database_url: str) -> dict[str, Any]:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    table = f"bench_bookings_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(dsn, min_size=CONCURRENCY, max_size=CONCURRENCY)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            await conn.execute(
                f"CREATE TABLE {table} (id uuid PRIMARY KEY, tenant_id text NOT NULL, "
                "title text NOT NULL, attendee_email text NOT NULL, status text NOT NULL, "
                "start_at timestamptz NOT NULL, occupied_until timestamptz NOT NULL, "
                f"CONSTRAINT {table}_no_overlap EXCLUDE USING gist "
                "(tenant_id WITH =, tstzrange(start_at, occupied_until, '[)') WITH &&) "
                "WHERE (status IN ('held', 'pending', 'confirmed')))"
            )
        tenant = uuid.uuid4().hex
        insert = (
            f"INSERT INTO {table} (id, tenant_id, title, attendee_email, status, start_at, "
            "occupied_until) VALUES ($1, $2, $3, $4, 'confirmed', $5, $6)"
        )

        async def one(i: int) -> str | None:
            start, end = slot(i)
            async with pool.acquire() as conn:
                await conn.execute(
                    insert, uuid.uuid4(), tenant, f"bench {i}", f"guest{i}@example.org", start, end
                )
            return None

        result = (await run_load(one, concurrency=CONCURRENCY, total=TOTAL)).summary()
        async with pool.acquire() as conn:
            await conn.execute(f"DROP TABLE {table}")
        return result
    finally:
        await pool.close()


EMPTY_CALENDAR = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Cortex bench//EN\r\nEND:VCALENDAR\r\n"


def connect_calendar(gateway: str, owner: Owner, radicale: Radicale) -> tuple[str, str]:
    """Give the owner an empty calendar on Radicale, connected through the REST API: the
    saga's live check reads it and its event write lands in it. The calendar's URL and the
    credentials' user."""
    user, password = owner.slug, uuid.uuid4().hex
    radicale.add_user(user, password)
    url = f"{radicale.url}{user}/bench/"
    httpx.put(
        url,
        content=EMPTY_CALENDAR.encode(),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
        auth=(user, password),
        timeout=30,
    ).raise_for_status()
    httpx.post(
        f"{gateway}/api/v1/calendars/caldav",
        json={"server_url": radicale.url, "username": user, "password": password},
        headers=owner.auth,
        timeout=60,
    ).raise_for_status()
    return url, password


def events_on(url: str, user: str, password: str) -> int:
    listing = httpx.request(
        "PROPFIND", url, headers={"Depth": "1"}, auth=(user, password), timeout=60
    )
    return len(re.findall(r"\.ics</", listing.text))


def run_all(
    gateway: str, plain: Owner, provided: Owner, database_url: str, root: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The saga twice: for an owner without a calendar (what Cortex itself costs), then for
    one whose calendar is on a local CalDAV server (Radicale): the live check reads it and
    every booking writes its event there. One bare-INSERT baseline for both."""
    bare = asyncio.run(_baseline(database_url))
    alone = asyncio.run(through_gateway(gateway, plain))
    radicale = Radicale(root / "radicale-s2", free_port()).start()
    try:
        url, password = connect_calendar(gateway, provided, radicale)
        with_calendar = asyncio.run(through_gateway(gateway, provided))
        written = events_on(url, provided.slug, password)
    finally:
        radicale.stop()
    with_calendar["provider"] = "CalDAV, an embedded Radicale (empty calendar at the start)"
    with_calendar["events_on_radicale"] = written
    rows = [
        *_rows("S2 booking", "no calendar", alone, bare),
        *_rows("S2 booking", "CalDAV", with_calendar, bare),
        row("S2 booking", "CalDAV: an event on Radicale per booking",
            f"{written} of {with_calendar['ok']}", "", "all", written == with_calendar["ok"]),
    ]  # fmt: skip
    figures = {"gateway": alone, "gateway_caldav": with_calendar, "bare_insert": bare}
    return figures, rows


def _rows(
    scenario: str, label: str, through: dict[str, Any], bare: dict[str, Any]
) -> list[dict[str, Any]]:
    return [
        row(scenario, f"{label}: bookings/s ({CONCURRENCY} clients)", through["per_second"],
            f"{bare['per_second']} (bare INSERT)", ">= 100", through["per_second"] >= 100),
        row(scenario, f"{label}: p50 ms", through["p50_ms"], bare["p50_ms"]),
        row(scenario, f"{label}: p99 ms", through["p99_ms"], bare["p99_ms"], "<= 150",
            through["p99_ms"] <= 150),
        row(scenario, f"{label}: errors", through["errors"], bare["errors"], "0",
            through["errors"] == 0),
    ]  # fmt: skip
