"""S3: conflict storm: 50 concurrent requests for one slot, several rounds, through the
gateway (full saga). Reports the latency of the losers (409) and of the winner (201), versus
50 concurrent bare asyncpg INSERTs for one range into a table with the same exclusion
constraint (one row wins, 49 exclusion violations)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.common import Owner, row
from bench.load import percentile

CONCURRENCY = 50
ROUNDS = 6
FIRST_DAY = 40  # days ahead: clear of S2's slots


def slot(round_no: int) -> tuple[datetime, datetime]:
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = base + timedelta(days=FIRST_DAY + round_no // 12, hours=round_no % 12 * 2)
    return start, start + timedelta(minutes=30)


def _stats(latencies: list[float]) -> dict[str, Any]:
    return {
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2) if latencies else None,
    }


async def _timed(coro: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    try:
        result = await coro
    except Exception as exc:  # counted as an outcome, never fatal
        result = exc
    return result, (time.perf_counter() - t0) * 1000


async def _gateway(gateway: str, owner: Owner) -> dict[str, Any]:
    url = f"{gateway}/public/{owner.slug}/book"
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    winners: list[float] = []
    losers: list[float] = []
    outcomes: Counter[str] = Counter()
    bad_rounds: list[str] = []
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        # open the connections first, so the storm measures booking, not TCP handshakes
        await asyncio.gather(*(client.get(f"{gateway}/health") for _ in range(CONCURRENCY)))
        for r in range(ROUNDS):
            start, end = slot(r)
            bodies = [
                {"title": f"storm {r}", "start": start.isoformat(), "end": end.isoformat(),
                 "attendee_email": f"storm{r}-{i}@example.org"}
                for i in range(CONCURRENCY)
            ]  # fmt: skip
            results = await asyncio.gather(*(_timed(client.post(url, json=b)) for b in bodies))
            statuses: Counter[str] = Counter()
            for response, ms in results:
                label = (
                    f"http_{response.status_code}"
                    if isinstance(response, httpx.Response)
                    else type(response).__name__
                )
                statuses[label] += 1
                if label == "http_201":
                    winners.append(ms)
                elif label == "http_409":
                    losers.append(ms)
            outcomes.update(statuses)
            if statuses != Counter({"http_201": 1, "http_409": CONCURRENCY - 1}):
                bad_rounds.append(f"round {r}: {dict(statuses)}")
    return {
        "rounds": ROUNDS,
        "concurrency": CONCURRENCY,
        "outcomes": dict(outcomes),
        "rounds_not_one_winner": bad_rounds,
        "errors": sum(n for k, n in outcomes.items() if k not in ("http_201", "http_409")),
        "losers": _stats(losers),
        "winner": _stats(winners),
    }


async def _baseline(database_url: str) -> dict[str, Any]:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    table = f"bench_storm_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(dsn, min_size=CONCURRENCY, max_size=CONCURRENCY)
    winners: list[float] = []
    losers: list[float] = []
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            await conn.execute(
                f"CREATE TABLE {table} (id uuid PRIMARY KEY, tenant_id text NOT NULL, "
                "start_at timestamptz NOT NULL, occupied_until timestamptz NOT NULL, "
                f"CONSTRAINT {table}_no_overlap EXCLUDE USING gist "
                "(tenant_id WITH =, tstzrange(start_at, occupied_until, '[)') WITH &&))"
            )
        insert = (
            f"INSERT INTO {table} (id, tenant_id, start_at, occupied_until) VALUES ($1, $2, $3, $4)"
        )
        tenant = uuid.uuid4().hex

        async def one(start: datetime, end: datetime) -> bool:
            async with pool.acquire() as conn:
                try:
                    await conn.execute(insert, uuid.uuid4(), tenant, start, end)
                except asyncpg.ExclusionViolationError:
                    return False
                return True

        for r in range(ROUNDS):
            start, end = slot(r)
            results = await asyncio.gather(*(_timed(one(start, end)) for _ in range(CONCURRENCY)))
            for won, ms in results:
                (winners if won is True else losers).append(ms)
        async with pool.acquire() as conn:
            await conn.execute(f"DROP TABLE {table}")
    finally:
        await pool.close()
    return {"losers": _stats(losers), "winner": _stats(winners)}


async def run(
    gateway: str, owner: Owner, database_url: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    through = await _gateway(gateway, owner)
    bare = await _baseline(database_url)
    lose, win = through["losers"], through["winner"]
    one_winner = not through["rounds_not_one_winner"] and through["errors"] == 0
    rows = [
        row("S3 storm", f"losers p99 ms ({ROUNDS} rounds x {CONCURRENCY})", lose["p99_ms"],
            f"{bare['losers']['p99_ms']} (bare INSERT)", "<= 200", lose["p99_ms"] <= 200),
        row("S3 storm", "losers p50 ms", lose["p50_ms"], bare["losers"]["p50_ms"]),
        row("S3 storm", "winner p50 / max ms", f"{win['p50_ms']} / {win['max_ms']}",
            f"{bare['winner']['p50_ms']} / {bare['winner']['max_ms']}"),
        row("S3 storm", "one 201 + 49 409 every round, no errors", one_winner, "", "yes",
            one_winner),
    ]  # fmt: skip
    return {"gateway": through, "bare_insert": bare}, rows
