"""S5: authenticated ``GET /api/v1/settings`` with the API-key cache warm."""

from __future__ import annotations

from typing import Any

from bench.common import Owner, row
from bench.load import Getter, run_load

CONCURRENCY = 4
DURATION_S = 8.0


async def run(gateway: str, owner: Owner) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    url = f"{gateway}/api/v1/settings"
    async with Getter(CONCURRENCY, headers=owner.auth) as getter:

        async def one(_: int) -> str | None:
            return await getter.get(url, 200)

        for i in range(50):  # warm the key cache and the connections
            error = await one(i)
            if error:
                raise RuntimeError(f"GET /api/v1/settings: {error}")

        result = await run_load(one, concurrency=CONCURRENCY, duration_s=DURATION_S)
    s = result.summary()
    rows = [
        row("S5 GET settings", "p50 ms", s["p50_ms"], "", "<= 5", s["p50_ms"] <= 5),
        row("S5 GET settings", "p99 ms", s["p99_ms"]),
        row("S5 GET settings", "requests/s (4 clients)", s["per_second"]),
        row("S5 GET settings", "errors", s["errors"], "", "0", s["errors"] == 0),
    ]
    return s, rows
