"""The gateway's edge: TOON, body limits, strict JSON, CORS, security headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import toon_format
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import toon
from gateway.app import create_app
from gateway.settings import GatewaySettings


@pytest.fixture
def client(nats_url: str) -> Iterator[TestClient]:
    app = create_app(
        GatewaySettings(nats_url=nats_url, max_body_bytes=4096, cors_origins="https://app.example")
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_toon_encode_round_trips_and_counts_tokens(client: TestClient) -> None:
    value = {
        "users": [{"id": i, "name": f"user {i}", "active": i % 2 == 0} for i in range(20)],
        "total": 20,
    }
    response = client.post("/api/v1/toon/encode", json={"json": value})
    assert response.status_code == 200, response.text
    body = response.json()
    assert toon_format.decode(body["toon"]) == value
    assert 0 < body["toon_tokens"] < body["json_tokens"] < body["json_pretty_tokens"]
    assert body["savings"] == round(1 - body["toon_tokens"] / body["json_tokens"], 4)


def test_toon_encode_refuses_non_json_and_large_bodies(client: TestClient) -> None:
    not_json = client.post(
        "/api/v1/toon/encode", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["code"] == "invalid_request"
    wrong_type = client.post(
        "/api/v1/toon/encode", content=b"a=b", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415 and wrong_type.json()["code"] == "unsupported_media_type"
    large = client.post("/api/v1/toon/encode", json={"json": "x" * 5000})
    assert large.status_code == 413 and large.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"json": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    streamed = client.post(
        "/api/v1/toon/encode", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_every_json_endpoint_answers_in_toon_when_asked(client: TestClient) -> None:
    by_header = client.get("/health", headers={"Accept": "text/toon"})
    assert by_header.headers["content-type"] == "text/toon; charset=utf-8"
    assert toon_format.decode(by_header.text) == {"status": "ok"}
    by_query = client.get("/no/such/route?format=toon")
    assert by_query.status_code == 404
    assert toon_format.decode(by_query.text)["code"] == "not_found"
    assert client.get("/health").headers["content-type"] == "application/json"


def test_security_headers_and_no_server_banner(client: TestClient) -> None:
    response = client.get("/health")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    private = client.get("/api/v1/keys")
    assert private.headers["cache-control"] == "no-store"


def test_cors_open_on_public_routes_closed_on_authenticated(client: TestClient) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    assert (
        client.options("/public/x/book", headers=preflight).headers["access-control-allow-origin"]
        == "*"
    )
    assert client.options("/api/v1/keys", headers=preflight).status_code == 403
    allowed = {**preflight, "Origin": "https://app.example"}
    answer = client.options("/api/v1/keys", headers=allowed)
    assert (
        answer.status_code == 204
        and answer.headers["access-control-allow-origin"] == "https://app.example"
    )
    assert (
        "access-control-allow-origin"
        not in client.get("/api/v1/keys", headers={"Origin": "https://evil.example"}).headers
    )


def test_availability_in_toon_is_compact_and_lossless() -> None:
    body = {
        "slug": "alice", "date": "2026-03-10", "timezone": "America/New_York", "duration": 30,
        "slots": [
            {"start": "2026-03-10T09:00:00-04:00", "end": "2026-03-10T12:00:00-04:00"},
            {"start": "2026-03-10T13:00:00-04:00", "end": "2026-03-11T00:00:00-04:00"},
        ],
    }  # fmt: skip
    text = toon.render("/public/alice/availability", body)
    decoded = toon_format.decode(text)
    assert decoded["utc_offset"] == "-04:00"
    assert decoded["slots"] == [
        {"start": "09:00", "end": "12:00"},
        {"start": "13:00", "end": "24:00"},
    ]
    assert toon.count_tokens(text) < toon.count_tokens(toon.encode(body))
    dst_day = {**body, "date": "2026-03-08", "slots": [
        {"start": "2026-03-08T00:00:00-05:00", "end": "2026-03-08T05:00:00-04:00"}]}  # fmt: skip
    assert (
        toon_format.decode(toon.render("/public/alice/availability", dst_day))["slots"]
        == dst_day["slots"]
    )


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_toon_is_lossless(value: object) -> None:
    assert toon_format.decode(toon.encode(value)) == value


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"json": "\\ud800"}', "Unicode"),
        (b'{"json": {"\\udfff": 1}}', "Unicode"),
        (b'{"json": NaN}', "finite"),
        (b'{"json": [1, -Infinity]}', "finite"),
        (b'{"json": 1e400}', "finite"),
    ],
)
def test_toon_encode_refuses_what_would_not_come_back(
    client: TestClient, body: bytes, says: str
) -> None:
    response = client.post(
        "/api/v1/toon/encode", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_json" and says in response.json()["error"]
