"""Per-client-IP rate limits, shared by every gateway replica through NATS.

A sliding window over JetStream counters: each window of ``window`` seconds has a counter
``ratelimit.<route>.<ip>.<window number>`` in the ``RATELIMITS`` counter stream (kept for
two windows by ``max_age``). A request adds one to the current window and is admitted while
``current + previous * (share of the previous window still inside the sliding window)`` is
at most the limit. The server applies increments one at a time, so the count is exact across
replicas; only the weighting of the previous window is an estimate (the usual sliding-window
counter).

The client IP is the socket peer, unless the peer is a trusted proxy: then the right-most
``X-Forwarded-For`` entry that is not itself a trusted proxy. A limit counts a client by
:func:`rate_client`: an IPv4 address by itself, an IPv6 address by its network (a /64 by
default: one subscriber's allocation, in which an address costs nothing), an IPv4-mapped IPv6
address (``::ffff:a.b.c.d``) as its IPv4 address.

If NATS cannot be reached, read-only routes fail open (served, logged, counted in
``rate_limit_store_errors``) and booking fails closed (503): a booking cannot run without
NATS anyway.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import nats.errors
from fastapi import Request
from faststream.nats import NatsBroker
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NoStreamResponseError, NotFoundError
from starlette.exceptions import HTTPException

from contracts.rpc import ErrorKind
from cortex_runtime import metrics
from cortex_runtime.broker import declare_stream
from cortex_runtime.errors import ServiceError
from gateway.quota import RATE_LIMIT_HEADERS

log = logging.getLogger(__name__)

STREAM = "RATELIMITS"
CLOSED_WINDOWS_KEPT = 10_000  # remembered counts of ended windows (route x client IP)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Limit:
    route: str
    requests: int
    window_seconds: int
    fail_open: bool = True


class RateLimited(HTTPException):
    def __init__(self, limit: Limit, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(
            status_code=429,
            detail=(
                f"Too many requests: {limit.requests} per {_span(limit.window_seconds)} from one "
                f"client. Try again in {retry_after} seconds."
            ),
            headers={**headers, "Retry-After": str(retry_after)},
        )


def _span(seconds: int) -> str:
    return {60: "minute", 3600: "hour", 86400: "day"}.get(seconds, f"{seconds} seconds")


def parse_networks(text: str) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(n.strip(), strict=False) for n in text.split(",") if n.strip()
    )


def client_ip(request: Request, trusted: tuple[Network, ...]) -> str:
    peer = request.client.host if request.client else "unknown"

    def is_trusted(value: str) -> bool:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return any(address in network for network in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the client: fall back to what we know
    return peer


def rate_client(ip: str, ipv6_prefix: int = 64) -> str:
    """Who a per-IP limit counts for the client address ``ip``: an IPv4 address, or the
    IPv6 network of ``ipv6_prefix`` bits around an IPv6 address (``2001:db8:1:2::/64``); an
    IPv4-mapped IPv6 address is its IPv4 address. Anything else is counted as given."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])  # without an IPv6 zone
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if ipv6_prefix < 128:
            return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


def _token(client: str) -> str:
    return (
        client.replace(".", "_").replace(":", "-").replace("%", "~").replace("/", "~") or "unknown"
    )


class RateLimiter:
    def __init__(
        self,
        broker: NatsBroker,
        trusted_proxies: str = "",
        timeout: float = 2.0,
        ipv6_prefix: int = 64,
    ) -> None:
        self._broker = broker
        self._trusted = parse_networks(trusted_proxies)
        self._ipv6_prefix = ipv6_prefix
        self._timeout = timeout
        self._stream_ready = False
        # the counts of windows that have ended, read once: a closed window no longer changes
        # (up to the clock skew between gateways), so one NATS read per request is saved
        self._closed: dict[str, int] = {}

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=STREAM,
            subjects=["ratelimit.>"],
            storage=StorageType.FILE,
            allow_msg_counter=True,
            allow_direct=True,
            max_age=2 * 86400,
            max_msgs_per_subject=1,
        )
        await declare_stream(self._broker, config)
        self._stream_ready = True

    async def _increment(self, subject: str) -> int:
        js = self._broker.config.connection_state.stream
        headers = {"Nats-Incr": "+1"}  # never stream=: the server refuses it on increments
        try:
            ack = await js.publish(subject, b"", headers=headers, timeout=self._timeout)
        except (NoStreamResponseError, nats.errors.NoRespondersError):
            if self._stream_ready:
                raise
            await self._ensure_stream()
            ack = await js.publish(subject, b"", headers=headers, timeout=self._timeout)
        return int(ack.val or 0)

    async def _read(self, subject: str) -> int:
        js = self._broker.config.connection_state.stream
        try:
            message = await js.get_last_msg(STREAM, subject, direct=True)
        except NotFoundError:
            return 0
        return int(json.loads(message.data or b"{}").get("val", 0))

    async def _read_closed(self, subject: str) -> int:
        """The final count of an ended window, remembered after the first read."""
        value = self._closed.get(subject)
        if value is None:
            value = await self._read(subject)
            if len(self._closed) >= CLOSED_WINDOWS_KEPT:
                self._closed.clear()
            self._closed[subject] = value
        return value

    def client_of(self, request: Request) -> str:
        """The client address of an HTTP request (through the trusted proxies), whatever
        the door it came in at."""
        return client_ip(request, self._trusted)

    async def hit(self, limit: Limit, request: Request) -> dict[str, str]:
        """Count the request; the X-RateLimit headers, or raise RateLimited (429)."""
        return await self.hit_client(limit, self.client_of(request))

    async def hit_client(self, limit: Limit, ip: str) -> dict[str, str]:
        """Count one call of the client at address ``ip`` against ``limit``: the
        X-RateLimit headers, or raise RateLimited (its ``headers`` hold Retry-After)."""
        client = rate_client(ip, self._ipv6_prefix)
        now = time.time()
        window = int(now // limit.window_seconds)
        base = f"ratelimit.{limit.route}.{_token(client)}"
        try:
            current = await self._increment(f"{base}.{window}")
            previous = (
                await self._read_closed(f"{base}.{window - 1}") if current <= limit.requests else 0
            )
        except Exception as exc:
            metrics.increment("rate_limit_store_errors")
            log.warning(
                "rate-limit store unreachable",
                extra={
                    "route": limit.route,
                    "fail_open": limit.fail_open,
                    "error": repr(exc)[:200],
                },
            )
            if limit.fail_open:
                return {}
            raise ServiceError(
                ErrorKind.UNAVAILABLE, "rate_limit_unavailable", "Please try again shortly."
            ) from exc
        elapsed = now - window * limit.window_seconds
        weight = 1 - elapsed / limit.window_seconds
        used = current + math.floor(previous * weight)
        reset = max(1, math.ceil(limit.window_seconds - elapsed))
        headers = {
            "X-RateLimit-Limit": str(limit.requests),
            "X-RateLimit-Remaining": str(max(0, limit.requests - used)),
            "X-RateLimit-Reset": str(reset),
        }
        if used > limit.requests:
            raise RateLimited(limit, reset, headers)
        return headers


async def check_limit(app: Any, route: str, ip: str) -> dict[str, str]:
    """Count one call from ``ip`` against the gateway's limit named ``route`` (the same
    limits and counters as the REST routes'): the X-RateLimit headers, or RateLimited."""
    limiter: RateLimiter = app.state.rate_limiter
    limit: Limit = app.state.rate_limits[route]
    return await limiter.hit_client(limit, ip)


def limited(route: str) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A route dependency applying the gateway's limit named ``route``."""

    async def dependency(request: Request) -> None:
        limiter: RateLimiter = request.app.state.rate_limiter
        limit: Limit = request.app.state.rate_limits[route]
        headers = await limiter.hit(limit, request)
        existing: dict[str, str] = getattr(request.state, RATE_LIMIT_HEADERS, None) or {}
        setattr(request.state, RATE_LIMIT_HEADERS, {**existing, **headers})

    return dependency
