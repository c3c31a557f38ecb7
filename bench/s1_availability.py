"""S1 (simplified): public availability through the gateway for an owner with no
external calendar connected; 32 concurrent clients for a fixed duration."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.common import Owner, check, row
from bench.load import run_load

CONCURRENCY = 32
DURATION_S = 10.0


async def run(gateway: str, owner: Owner) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    url = f"{gateway}/public/{owner.slug}/availability"
    days = [time.strftime("%Y-%m-%d", time.gmtime(time.time() + d * 86400)) for d in range(2, 9)]
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for day in days:
            (await client.get(url, params={"date": day})).raise_for_status()

        async def one(i: int) -> str | None:
            response = await client.get(url, params={"date": days[i % len(days)], "duration": 30})
            return check(response, 200)

        result = await run_load(one, concurrency=CONCURRENCY, duration_s=DURATION_S)
    s = result.summary()
    s["calendar"] = "none connected (working hours only)"
    rows = [
        row("S1 availability", "requests/s (32 clients)", s["per_second"], "", ">= 500",
            s["per_second"] >= 500),
        row("S1 availability", "p50 ms", s["p50_ms"]),
        row("S1 availability", "p99 ms", s["p99_ms"], "", "<= 50", s["p99_ms"] <= 50),
        row("S1 availability", "errors", s["errors"], "", "0", s["errors"] == 0),
    ]  # fmt: skip
    return s, rows
