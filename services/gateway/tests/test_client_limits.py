"""Who a per-IP limit counts: IPv4 addresses one by one, IPv6 clients by their network."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.settings import GatewaySettings


@pytest.fixture
def client(nats_url: str) -> Iterator[TestClient]:
    settings = GatewaySettings(
        nats_url=nats_url, rate_toon_per_minute=3, trusted_proxies="127.0.0.1/32"
    )
    app = create_app(settings)
    with TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False) as test:
        # the first request declares the counter stream; a slow declaration would fail open
        # (admitted, uncounted) inside a test's burst
        for _ in range(50):
            warm = test.post("/api/v1/toon/encode", json={"json": 1})
            if "X-RateLimit-Limit" in warm.headers:
                break
        yield test


def _encode_from(client: TestClient, address: str) -> int:
    response = client.post(
        "/api/v1/toon/encode", json={"json": 1}, headers={"X-Forwarded-For": address}
    )
    assert "X-RateLimit-Limit" in response.headers, "counted (not failed open)"
    return response.status_code


def _fresh_window() -> None:
    """A burst early in a minute stays inside one window of the sliding count."""
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left + 0.5)


def test_ipv6_clients_are_counted_by_their_64(client: TestClient) -> None:
    _fresh_window()
    net = f"2001:db8:{uuid.uuid4().int % 0xFFFF:x}:{uuid.uuid4().int % 0xFFFF:x}"
    # three addresses of one /64: one client, whose fourth request is over the limit
    assert [_encode_from(client, f"{net}::{i}") for i in (1, 2, 3)] == [200, 200, 200]
    assert _encode_from(client, f"{net}:ffff:ffff:ffff:ffff") == 429
    # the next /64 is another client
    other = net.rsplit(":", 1)[0] + f":{(int(net.rsplit(':', 1)[1], 16) + 1) % 0xFFFF:x}"
    assert _encode_from(client, f"{other}::1") == 200


def test_ipv4_addresses_are_counted_one_by_one_and_mapped_ipv6_is_ipv4(
    client: TestClient,
) -> None:
    _fresh_window()
    a = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    b = a.rsplit(".", 1)[0] + f".{int(a.rsplit('.', 1)[1]) % 250 + 2}"
    assert _encode_from(client, a) == 200
    assert _encode_from(client, f"::ffff:{a}") == 200  # the same client, written as IPv6
    assert _encode_from(client, a) == 200
    assert _encode_from(client, f"::ffff:{a}") == 429
    assert _encode_from(client, b) == 200  # the neighbour is another client


def test_rate_client() -> None:
    from gateway.limits import rate_client

    assert rate_client("203.0.113.9") == "203.0.113.9"
    assert rate_client("::ffff:203.0.113.9") == "203.0.113.9"
    assert rate_client("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert rate_client("2001:db8:1:2::9") == rate_client("2001:db8:1:2:ffff::1")
    assert rate_client("2001:db8:1:2:3:4:5:6", ipv6_prefix=48) == "2001:db8:1::/48"
    assert rate_client("2001:db8::1", ipv6_prefix=128) == "2001:db8::1"
    assert rate_client("fe80::1%eth0") == "fe80::/64"
    assert rate_client("testclient") == "testclient"  # not an address: counted as given
