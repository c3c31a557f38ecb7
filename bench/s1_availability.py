"""S1: public availability through the gateway for an owner whose three CalDAV calendars
(on an embedded Radicale) hold 2,000 events including 50 recurring series; 32 concurrent
clients for a fixed duration. Baseline: Radicale answering the free-busy REPORTs for the
same days, measured the same way. Every benchmarked day's answer must equal the free time
computed from Radicale's free-busy answer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import s1_calendars
from bench.common import Owner, row
from bench.load import Getter, run_load
from cortex_dev.embedded import Radicale, free_port

CONCURRENCY = 32
DURATION_S = 10.0
DAYS_AHEAD = (2, 3, 4)  # far enough that min notice (0 h) never cuts the day
WORK = ("08:00", "18:00")  # make_owner's default working hours
DURATION_MIN = 30
SYNC_WAIT_S = 240.0


def start_radicale(root: Path) -> Radicale:
    return Radicale(root / "radicale", free_port()).start()


def connect(gateway: str, owner: Owner, radicale: Radicale) -> dict[str, Any]:
    """Fill three calendars on Radicale, connect them through the REST API (calendars
    discovers and syncs them), and wait until the synced copy holds every calendar."""
    user, password = owner.slug, uuid.uuid4().hex
    radicale.add_user(user, password)
    data = s1_calendars.upload(radicale, user, password, datetime.now(UTC).date())
    t0 = time.monotonic()
    response = httpx.post(
        f"{gateway}/api/v1/calendars/caldav",
        json={"server_url": radicale.url, "username": user, "password": password},
        headers=owner.auth,
        timeout=300,
    )
    if response.status_code == 504:
        # the first sync of 2,000 events can outlast the gateway's wait; calendars goes on
        # with it: wait until the connection reports its sync
        deadline = time.monotonic() + SYNC_WAIT_S
        while time.monotonic() < deadline:
            listed = httpx.get(f"{gateway}/api/v1/calendars", headers=owner.auth, timeout=30)
            if listed.status_code == 504:  # calendars is busy with that very sync
                time.sleep(0.5)
                continue
            listed.raise_for_status()
            found = [c for c in listed.json()["connections"] if c.get("last_synced_at")]
            if found:
                connection = found[0]
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the CalDAV connection did not sync within {SYNC_WAIT_S}s")
    else:
        response.raise_for_status()
        connection = response.json()
    data["connect_and_sync_s"] = round(time.monotonic() - t0, 2)
    data["connected_calendars"] = len(connection.get("calendars", []))
    data["connection_status"] = connection.get("status")
    data["user"], data["password"] = user, password
    return data


async def run(
    gateway: str, owner: Owner, radicale: Radicale, user: str, password: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    today = datetime.now(UTC).date()
    days: list[date] = [today + timedelta(days=d) for d in DAYS_AHEAD]
    base, answers = await s1_calendars.baseline(radicale, user, password, days)
    url = f"{gateway}/public/{owner.slug}/availability"
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    mismatches: list[str] = []
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for day in days:
            response = await client.get(
                url, params={"date": day.isoformat(), "duration": DURATION_MIN}
            )
            response.raise_for_status()
            got = s1_calendars.slots_of(response.json())
            want = s1_calendars.expected_windows(day, answers[day], WORK, DURATION_MIN)
            if got != want:
                mismatches.append(f"{day}: cortex {got} != radicale {want}")

    async with Getter(CONCURRENCY) as getter:

        async def one(i: int) -> str | None:
            day = days[i % len(days)]
            params = {"date": day.isoformat(), "duration": str(DURATION_MIN)}
            return await getter.get(url, 200, params)

        await asyncio.gather(*(one(i) for i in range(CONCURRENCY)))  # open the connections
        result = await run_load(one, concurrency=CONCURRENCY, duration_s=DURATION_S)
    s = result.summary()
    s["days"] = [d.isoformat() for d in days]
    s["answers_match_radicale"] = not mismatches
    s["mismatches"] = mismatches[:3]
    s["windows_per_day"] = {
        d.isoformat(): len(s1_calendars.expected_windows(d, answers[d], WORK, DURATION_MIN))
        for d in days
    }
    s["radicale_baseline"] = base
    b = base
    rows = [
        row("S1 availability", "requests/s (32 clients)", s["per_second"],
            f"{b['per_second']} Radicale free-busy ({b['concurrency']} conns)", ">= 500",
            s["per_second"] >= 500),
        row("S1 availability", "p50 ms", s["p50_ms"], b["p50_ms"]),
        row("S1 availability", "p99 ms", s["p99_ms"], b["p99_ms"], "<= 50", s["p99_ms"] <= 50),
        row("S1 availability", "answers = free time from Radicale", not mismatches, "",
            f"{len(days)} days equal", not mismatches),
        row("S1 availability", "errors", s["errors"], b["errors"], "0", s["errors"] == 0),
    ]  # fmt: skip
    return s, rows


def run_all(
    gateway: str, owner: Owner, root: Path, say: Callable[[str], None]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Radicale up, the calendars filled and connected, the scenario, Radicale down."""
    radicale = start_radicale(root)
    try:
        say("S1 data: 3 calendars, 2,000 events (50 series) on Radicale, connecting ...")
        data = connect(gateway, owner, radicale)
        say(f"S1 data: uploaded in {data['upload_s']}s, connected and synced in "
            f"{data['connect_and_sync_s']}s")  # fmt: skip
        figures, rows = asyncio.run(run(gateway, owner, radicale, data["user"], data["password"]))
        figures["calendar_data"] = {k: v for k, v in data.items() if k not in ("user", "password")}
        return figures, rows
    finally:
        radicale.stop()
