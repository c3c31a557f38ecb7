"""An asynchronous load generator and the statistics every scenario reports."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    concurrency: int
    elapsed_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "concurrency": self.concurrency,
            "elapsed_s": round(self.elapsed_s, 3),
            "ok": self.ok,
            "errors": self.error_count,
            "error_kinds": dict(self.errors),
            "error_samples": self.error_samples[:5],
            "per_second": round(self.rate, 1),
            "p50_ms": round(percentile(lat, 50), 2),
            "p90_ms": round(percentile(lat, 90), 2),
            "p99_ms": round(percentile(lat, 99), 2),
            "max_ms": round(max(lat), 2) if lat else None,
            "mean_ms": round(statistics.fmean(lat), 2) if lat else None,
        }


# one request: given its sequence number, return None when it succeeded, else an error
# label optionally followed by a space and details
Request = Callable[[int], Awaitable[str | None]]


async def run_load(
    request: Request,
    *,
    concurrency: int,
    duration_s: float | None = None,
    total: int | None = None,
) -> LoadResult:
    """Run ``request`` from ``concurrency`` workers until ``duration_s`` passed or ``total``
    requests were sent. Only successful requests count in the latencies; each failure is
    counted by its label (and an exception by its type)."""
    if (duration_s is None) == (total is None):
        raise ValueError("give exactly one of duration_s and total")
    result = LoadResult(concurrency=concurrency, elapsed_s=0.0)
    counter = 0
    started = time.perf_counter()
    deadline = started + duration_s if duration_s is not None else float("inf")

    def next_index() -> int | None:
        nonlocal counter
        if total is not None and counter >= total:
            return None
        if time.perf_counter() >= deadline:
            return None
        counter += 1
        return counter - 1

    async def worker() -> None:
        while (i := next_index()) is not None:
            t0 = time.perf_counter()
            try:
                error = await request(i)
            except Exception as exc:  # a failed request is counted, never fatal
                error = type(exc).__name__
                if len(result.error_samples) < 5:
                    result.error_samples.append(repr(exc)[:300])
            elapsed = (time.perf_counter() - t0) * 1000
            if error is None:
                result.latencies_ms.append(elapsed)
            else:  # "label detail...": counted by label, the first few kept whole
                result.errors[error.split(" ", 1)[0]] += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(error[:300])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    return result


class Getter:
    """GET (and POST) requests for the load loops, on aiohttp with one pooled connection per worker.

    The load generator runs on the same two cores as the system it measures, so what it
    spends per request is taken from the services: httpx's AsyncClient cost 3.5 ms of CPU
    per S1 request here (py-spy, ``python -m bench.profile s1``), more than the gateway and
    booking together; aiohttp's client does the same work for a fraction of that."""

    def __init__(self, concurrency: int, headers: dict[str, str] | None = None) -> None:
        self._concurrency = concurrency
        self._headers = headers or {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Getter:
        connector = aiohttp.TCPConnector(limit=self._concurrency, ttl_dns_cache=None)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=30),
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(
        self, url: str, expected: int, params: dict[str, str] | None = None
    ) -> str | None:
        """None when the answer had the expected status, else an error label and details."""
        assert self._session is not None, "use the getter in an async with block"
        async with self._session.get(url, params=params) as response:
            body = await response.read()
            if response.status == expected:
                return None
            return f"http_{response.status} {body[:200].decode(errors='replace')}"

    async def post(
        self,
        url: str,
        expected: int,
        data: bytes,
        headers: dict[str, str] | None = None,
        refused: tuple[bytes, ...] = (),
    ) -> str | None:
        """POST ``data`` (already encoded: the loop pays no encoding); None when the answer
        had the expected status and contains none of ``refused`` (e.g. an MCP tool error,
        which is an HTTP 200), else an error label and details."""
        assert self._session is not None, "use the getter in an async with block"
        async with self._session.post(url, data=data, headers=headers) as response:
            body = await response.read()
            if response.status != expected:
                return f"http_{response.status} {body[:200].decode(errors='replace')}"
            if any(marker in body for marker in refused):
                return f"refused {body[:200].decode(errors='replace')}"
            return None
