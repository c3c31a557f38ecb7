"""The gateway edge with the whole system: per-IP limits across replicas, TOON, faults."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter

import httpx
import pytest
import toon_format

from cortex_dev.stack import Stack
from tests.e2e.harness import System, SystemOptions, cli_tenant, put_setting

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        replicas={"gateway": 2},
        environ={
            "CORTEX_GATEWAY_RATE_AVAILABILITY_PER_MINUTE": "60",
            "CORTEX_GATEWAY_RATE_RESOLVE_PER_MINUTE": "30",
            "CORTEX_GATEWAY_TRUSTED_PROXIES": "127.0.0.1/32",
            "CORTEX_RPC_TIMEOUT": "2",
        },
    )


@pytest.fixture(scope="module")
def stack(system: System) -> Stack:
    """These tests reach the processes themselves: the system's stack."""
    return system.stack


def owner(stack: Stack) -> tuple[str, str]:
    """A tenant with an open page: its slug and key."""
    slug = f"edge-{uuid.uuid4().hex[:8]}"
    tenant = cli_tenant(stack, f"{slug}@example.com", slug)
    put_setting(stack.gateway_urls[0], tenant.key, "open-scheduling", {"enabled": True})
    return slug, tenant.key


def wait_for_fresh_minute(margin: float = 15.0) -> None:
    """Start a burst early in a minute, so it stays inside one window."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.5)


def test_availability_limit_is_shared_by_both_gateways(stack: Stack) -> None:
    slug, _ = owner(stack)
    client_ip = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 5 * 86400))
    for _ in range(100):  # the projection reaches booking
        if httpx.get(f"{stack.gateway_urls[0]}/public/{slug}/availability", params={"date": day},
                     headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 200:  # fmt: skip
            break
        time.sleep(0.1)
    wait_for_fresh_minute()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(i: int) -> httpx.Response:
                return await client.get(
                    f"{stack.gateway_urls[i % 2]}/public/{slug}/availability", params={"date": day},
                    headers={"X-Forwarded-For": f"10.9.9.9, {client_ip}"},
                )  # fmt: skip

            return await asyncio.gather(*(one(i) for i in range(130)))

    responses = asyncio.run(burst())
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 60, 429: 70}, statuses
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert (
        limited.headers["X-RateLimit-Limit"] == "60"
        and limited.headers["X-RateLimit-Remaining"] == "0"
    )
    ok = next(r for r in responses if r.status_code == 200)
    assert ok.headers["X-RateLimit-Limit"] == "60"
    # another client is not affected
    other = httpx.get(f"{stack.gateway_urls[1]}/public/{slug}/availability", params={"date": day},
                      headers={"X-Forwarded-For": "198.51.100.99"})  # fmt: skip
    assert other.status_code == 200


def test_forwarded_for_is_ignored_from_untrusted_peers(stack: Stack) -> None:
    from fastapi import Request

    from gateway.limits import client_ip, parse_networks

    def request(peer: str, forwarded: str) -> Request:
        scope = {
            "type": "http",
            "client": (peer, 1),
            "headers": [(b"x-forwarded-for", forwarded.encode())],
        }
        return Request(scope)

    trusted = parse_networks("127.0.0.1/32,10.0.0.0/8")
    assert client_ip(request("198.51.100.1", "1.2.3.4"), trusted) == "198.51.100.1"
    assert client_ip(request("127.0.0.1", "1.2.3.4, 10.1.1.1"), trusted) == "1.2.3.4"
    assert client_ip(request("127.0.0.1", "spoofed, 5.6.7.8"), trusted) == "5.6.7.8"
    assert client_ip(request("127.0.0.1", "garbage"), trusted) == "127.0.0.1"
    assert client_ip(request("127.0.0.1", "1.2.3.4"), ()) == "127.0.0.1"


def test_toon_through_the_system(stack: Stack) -> None:
    slug, key = owner(stack)
    settings = httpx.get(
        f"{stack.gateway_urls[0]}/api/v1/settings", headers={"Authorization": f"Bearer {key}", "Accept": "text/toon"}
    )  # fmt: skip
    assert settings.headers["content-type"] == "text/toon; charset=utf-8"
    assert toon_format.decode(settings.text)["slug"] == slug


def test_a_service_that_does_not_answer_is_504_and_nats_down_is_503(stack: Stack) -> None:
    _, key = owner(stack)
    auth = {"Authorization": f"Bearer {key}"}
    gateway = stack.gateway_urls[0]
    assert httpx.get(f"{gateway}/api/v1/settings", headers=auth).status_code == 200  # key cached
    identity = stack.child("identity-1").process
    assert identity is not None
    identity.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        stalled = httpx.get(f"{gateway}/api/v1/settings", headers=auth, timeout=30)
        assert stalled.status_code == 504, stalled.text
        assert stalled.json()["code"] == "service_timeout"
        assert time.monotonic() - started < 10
    finally:
        identity.send_signal(signal.SIGCONT)
    assert stack.nats is not None
    stack.nats.stop()
    try:
        down = httpx.get(f"{gateway}/api/v1/settings", headers=auth, timeout=30)
        assert down.status_code == 503 and down.json()["code"] == "messaging_unavailable"
        ready = httpx.get(f"{gateway}/ready", timeout=30)
        assert ready.status_code == 503 and ready.json()["missing"][0] == "nats"
        assert httpx.get(f"{gateway}/health").status_code == 200
    finally:
        stack.nats.start()
    stack.wait_ready(timeout=60)  # everything reconnects by itself
