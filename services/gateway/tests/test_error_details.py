"""What an error body carries beside ``error`` and ``code`` for a client to act on: a
booking conflict's clash and next slots, a 429's seconds to wait."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway.app import create_app
from gateway.quota import Admission, DailyLimitReached
from gateway.settings import GatewaySettings

CONFLICT = {
    "start": "2026-03-16T14:00:00-04:00",
    "end": "2026-03-16T14:30:00-04:00",
    "summary": "Team Standup",
    "source": "calendar",
}
NEXT = [{"start": "2026-03-16T14:30:00-04:00", "end": "2026-03-16T15:00:00-04:00"}]

probe = APIRouter()


@probe.get("/probe/conflict")
async def conflict() -> None:
    raise ServiceError(
        ErrorKind.CONFLICT,
        "slot_unavailable",
        "Booking conflict: existing event 'Team Standup' at 14:00-14:30",
        {"conflict": CONFLICT, "next_slots": NEXT, "calendar_id": "cal_internal"},
    )


@probe.get("/probe/daily")
async def daily() -> None:
    raise DailyLimitReached(Admission(limit=1000, used=1001, reset_seconds=4242))


@probe.get("/probe/service-rate-limited")
async def service_rate_limited() -> None:
    raise ServiceError(
        ErrorKind.RATE_LIMITED, "rate_limited", "Slow down.", {"retry_after_seconds": 7.2}
    )


@pytest.fixture
def client(nats_url: str) -> Iterator[TestClient]:
    settings = GatewaySettings(
        nats_url=nats_url, rate_toon_per_minute=2, trusted_proxies="127.0.0.1/32"
    )
    app = create_app(settings)
    app.include_router(probe)
    with TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False) as test:
        for _ in range(50):  # the first request declares the counter stream
            warm = test.post("/api/v1/toon/encode", json={"json": 1})
            if "X-RateLimit-Limit" in warm.headers:
                break
        yield test


def test_a_conflict_body_carries_the_clash_and_next_slots_and_nothing_internal(
    client: TestClient,
) -> None:
    response = client.get("/probe/conflict")
    assert response.status_code == 409
    assert response.json() == {
        "error": "Booking conflict: existing event 'Team Standup' at 14:00-14:30",
        "code": "slot_unavailable",
        "conflict": CONFLICT,
        "next_slots": NEXT,
    }


def test_a_per_ip_429_body_says_the_seconds_to_wait(client: TestClient) -> None:
    if 60 - time.time() % 60 < 10:  # a burst inside one window of the sliding count
        time.sleep(60 - time.time() % 60 + 0.5)
    address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    answers = [
        client.post("/api/v1/toon/encode", json={"json": 1}, headers={"X-Forwarded-For": address})
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[-1]
    body = limited.json()
    assert body["code"] == "rate_limited"
    assert body["retry_after_seconds"] == int(limited.headers["Retry-After"]) >= 1
    assert f"Try again in {body['retry_after_seconds']} seconds" in body["error"]
    assert "X-RateLimit-Limit" in limited.headers


def test_the_daily_limit_429_body_says_the_seconds_to_wait(client: TestClient) -> None:
    response = client.get("/probe/daily")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "4242"
    assert response.json()["retry_after_seconds"] == 4242
    assert response.json()["code"] == "rate_limited"


def test_a_service_rate_limit_gets_the_header_from_its_details(client: TestClient) -> None:
    response = client.get("/probe/service-rate-limited")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "8"
    assert response.json() == {
        "error": "Slow down.",
        "code": "rate_limited",
        "retry_after_seconds": 8,
    }


def test_the_openapi_error_body_documents_the_fields(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    body = schemas["ErrorBody"]["properties"]
    assert {"error", "code", "conflict", "next_slots", "retry_after_seconds"} <= set(body)
    conflict = schemas["ErrorConflict"]["properties"]
    assert set(conflict) == {"start", "end", "summary", "source"}
    assert conflict["source"]["enum"] == ["calendar", "booking"]
    assert set(schemas["ErrorSlot"]["properties"]) == {"start", "end"}
