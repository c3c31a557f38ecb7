"""Per-tenant daily API-call quotas and usage metering, exact across gateway replicas.

Every admitted call adds one to the tenant's counter for the UTC day,
``usage.calls.<tenant>.<YYYYMMDD>``, in a JetStream *counter stream* (NATS 2.12+): the
publish carries ``Nats-Incr: +1`` and the stream's acknowledgement returns the new total.
The server applies increments one at a time, so with any number of gateways each call gets
a distinct total, and a call is admitted while that total is at most the plan's limit. A
refused call takes its increment back (``-1``), so the counter ends at exactly the number
of calls admitted. There is no database write and no service hop per request; the counts
live in the stream (file storage), so a gateway restart loses nothing. Billing reads the
same counters for ``GET /api/v1/usage/daily`` and ``calls_today``.

The tenant's limit comes from billing (``get_plan``), cached for ``cache_seconds`` and
dropped at every replica when billing announces ``plan_changed``. When billing or NATS
cannot be reached the call is let through (the API stays up; the outage is logged).

Wiring (in ``gateway.app``)::

    call_quota = CallQuota(broker)           # in create_app, before the broker starts
    call_quota.subscribe()                   # plan_changed: every replica, no queue group
    app.state.call_quota = call_quota
    app.middleware("http")(rate_limit_headers)
    # in authenticate(), after the key is verified:
    await request.app.state.call_quota.admit(principal.tenant_id, request)

The RPC client is taken from ``request.app.state.rpc`` on first use (or given with
:meth:`CallQuota.bind`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import nats.errors
from fastapi import Request, Response
from faststream.nats import NatsBroker
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NoStreamResponseError
from starlette.exceptions import HTTPException

from contracts import billing
from cortex_runtime.broker import declare_stream
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/api/v1/billing/", "/api/v1/usage/", "/api/v1/dashboard/")
"""Paths a tenant at its limit can still reach (to see its usage and upgrade); not counted."""

RATE_LIMIT_HEADERS = "rate_limit_headers"  # request.state attribute read by the middleware


def seconds_to_utc_midnight(now: datetime) -> int:
    """Whole seconds until the next UTC midnight, at least 1."""
    moment = now.astimezone(UTC)
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, int((midnight - moment).total_seconds() + 0.999))


@dataclass(frozen=True)
class Admission:
    """The outcome of counting one call: the limit (None: unlimited) and the day's total."""

    limit: int | None
    used: int
    reset_seconds: int

    @property
    def admitted(self) -> bool:
        return self.limit is None or self.used <= self.limit

    def headers(self) -> dict[str, str]:
        if self.limit is None:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class DailyLimitReached(HTTPException):
    """429 ``rate_limited`` with Retry-After and the X-RateLimit headers (the gateway's
    HTTP error handler turns it into ``{"error", "code"}``)."""

    def __init__(self, admission: Admission) -> None:
        super().__init__(
            status_code=429,
            detail=(
                f"Daily API call limit reached: your plan allows {admission.limit} calls per "
                "day (UTC). It resets at midnight UTC; upgrade the plan for more."
            ),
            headers={**admission.headers(), "Retry-After": str(admission.reset_seconds)},
        )


@dataclass
class _Cached:
    limit: int | None
    expires: float


class CallQuota:
    def __init__(
        self,
        broker: NatsBroker,
        rpc: RpcClient | None = None,
        *,
        cache_seconds: float = 30.0,
        unknown_retry_seconds: float = 5.0,
        timeout: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._broker = broker
        self._rpc = rpc
        self._cache_seconds = cache_seconds
        self._unknown_retry = unknown_retry_seconds
        self._timeout = timeout
        self._clock = clock
        self._limits: dict[str, _Cached] = {}
        self._loading: dict[str, asyncio.Task[int | None]] = {}
        self._generation = 0
        self._stream_ready = False

    def bind(self, rpc: RpcClient) -> None:
        """Give the quota the RPC client it asks billing with."""
        self._rpc = rpc

    # --- limits, cached --------------------------------------------------------------------
    def subscribe(self) -> None:
        """Drop a tenant's cached limit when billing announces a plan change (every replica
        hears it: a plain subscription, no queue group). Call before the broker starts."""

        async def on_plan_changed(event: billing.PlanChanged) -> None:
            self.forget(event.tenant_id)

        self._broker.subscriber(
            billing.PLAN_CHANGED.subject, title="gateway: forget a tenant's call limit"
        )(on_plan_changed)

    def forget(self, tenant_id: str | None = None) -> None:
        """Forget one tenant's limit, or every limit (after a reconnect: events were missed)."""
        self._generation += 1
        if tenant_id is None:
            self._limits.clear()
        else:
            self._limits.pop(tenant_id, None)

    async def limit(self, tenant_id: str) -> int | None:
        """The tenant's calls/day limit; None is unlimited (or unknown: billing is down)."""
        cached = self._limits.get(tenant_id)
        if cached is not None and time.monotonic() < cached.expires:
            return cached.limit
        loading = self._loading.get(tenant_id)
        if loading is None:  # one request to billing per tenant, however many calls wait
            loading = asyncio.create_task(self._load(tenant_id, cached))
            self._loading[tenant_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(tenant_id, None))
        return await asyncio.shield(loading)

    async def _load(self, tenant_id: str, stale: _Cached | None) -> int | None:
        generation = self._generation
        if self._rpc is None:
            raise RuntimeError("CallQuota.bind(rpc) was not called")
        try:
            plan = await self._rpc.call(
                billing.GET_PLAN, billing.GetPlan(tenant_id=tenant_id), timeout=self._timeout
            )
        except ServiceError as exc:
            log.warning(
                "cannot learn a tenant's call limit; not limiting it for now",
                extra={"tenant_id": tenant_id, "error": exc.reply.message},
            )
            limit = stale.limit if stale is not None else None
            self._limits[tenant_id] = _Cached(limit, time.monotonic() + self._unknown_retry)
            return limit
        if generation == self._generation:  # no plan change was announced meanwhile
            self._limits[tenant_id] = _Cached(
                plan.calls_daily_limit, time.monotonic() + self._cache_seconds
            )
        return plan.calls_daily_limit

    # --- the counter --------------------------------------------------------------------------
    async def _ensure_stream(self) -> None:
        config = StreamConfig(storage=StorageType.FILE, **billing.usage_stream_config())  # type: ignore[arg-type]
        await declare_stream(self._broker, config)
        self._stream_ready = True

    async def _add(self, subject: str, delta: int) -> int:
        """Add ``delta`` to a counter; the new total. Never pass ``stream=`` here: the
        expected-stream header makes the server refuse an increment."""
        js = self._broker.config.connection_state.stream
        headers = {"Nats-Incr": f"{delta:+d}"}
        try:
            ack = await js.publish(subject, b"", headers=headers, timeout=self._timeout)
        except (NoStreamResponseError, nats.errors.NoRespondersError):
            if self._stream_ready:
                raise
            await self._ensure_stream()  # first call on a fresh NATS: declare the stream
            ack = await js.publish(subject, b"", headers=headers, timeout=self._timeout)
        return int(ack.val or 0)

    async def count(self, tenant_id: str, day: date, delta: int = 1) -> int:
        return await self._add(billing.calls_counter_subject(tenant_id, day), delta)

    # --- the hook ------------------------------------------------------------------------------
    async def admit(self, tenant_id: str, request: Request | None = None) -> Admission | None:
        """Count one call of ``tenant_id`` and admit it, or raise :class:`DailyLimitReached`.

        With ``request``: calls to the billing, usage and dashboard endpoints are neither
        counted nor limited, and the X-RateLimit headers are left for
        :func:`rate_limit_headers` to put on the response. None when nothing was counted.
        """
        if request is not None:
            if request.url.path.startswith(EXEMPT_PREFIXES):
                return None
            if self._rpc is None:
                self._rpc = request.app.state.rpc
        now = self._clock()
        day = now.astimezone(UTC).date()
        limit = await self.limit(tenant_id)
        try:
            used = await self.count(tenant_id, day)
        except Exception as exc:  # NATS down, a timeout: the API stays up
            log.warning(
                "cannot count an API call; letting it through",
                extra={"tenant_id": tenant_id, "error": repr(exc)[:300]},
            )
            return None
        admission = Admission(limit, used, seconds_to_utc_midnight(now))
        if not admission.admitted:
            try:  # the refused call does not count
                await self.count(tenant_id, day, -1)
            except Exception as exc:
                log.warning("cannot take back a refused call", extra={"error": repr(exc)[:300]})
            raise DailyLimitReached(admission)
        if request is not None:
            setattr(request.state, RATE_LIMIT_HEADERS, admission.headers())
        return admission


async def rate_limit_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """HTTP middleware: the X-RateLimit headers of an admitted call, on its response."""
    response = await call_next(request)
    headers: dict[str, Any] | None = getattr(request.state, RATE_LIMIT_HEADERS, None)
    if headers:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
    return response
