"""The gateway's edge: TOON, body limits, strict JSON, CORS, security headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import toon_format
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway import toon
from gateway.app import create_app
from gateway.routes.dashboard import PlanSummary
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


AVAILABILITY = {
    "slug": "alice", "date": "2026-03-10", "timezone": "America/New_York", "duration": 30,
    "slots": [
        {"start": "2026-03-10T09:00:00-04:00", "end": "2026-03-10T12:00:00-04:00"},
        {"start": "2026-03-10T13:00:00-04:00", "end": "2026-03-11T00:00:00-04:00"},
    ],
}  # fmt: skip
SEED_DASHBOARD = {  # the REST reference's example, verbatim
    "plan": {
        "tier": "starter", "user_type": "individual", "calendars_connected": 2,
        "calendars_limit": None, "bookings_used": 5, "bookings_limit": 20,
        "calls_today": 42, "calls_daily_limit": None,
    },
    "calendars": [{"provider": "google", "email": "[email protected]", "calendar_count": 3}],
    "recent_activity": [],
}  # fmt: skip
# what the JSON routes answer, at the paths that used to get a reshaped ("compact") TOON view
ANSWERS = {
    "/public/alice/availability": AVAILABILITY,
    "/api/v1/dashboard/summary": SEED_DASHBOARD,
    "/api/v1/settings": {"slug": "alice", "timezone": "Europe/Berlin", "working_hours": {
        "mon": [{"start": "09:00", "end": "17:00"}]}, "open_scheduling": True},
    "/api/v1/bookings": {"bookings": [{"id": "bk_1", "status": "confirmed",
        "start": "2026-03-10T09:00:00Z", "end": "2026-03-10T09:30:00Z"}], "next_cursor": None},
}  # fmt: skip


def answering(path: str, body: Any) -> Starlette:
    """The gateway's TOON middleware over an app that answers ``body`` as JSON at ``path``."""

    async def answer(request: Request) -> JSONResponse:
        return JSONResponse(body)

    return Starlette(routes=[Route(path, answer)], middleware=[Middleware(toon.ToonResponses)])


@pytest.mark.parametrize("path", list(ANSWERS))
def test_a_toon_answer_decodes_to_the_json_answer(path: str) -> None:
    """TOON is an encoding, not a view: no route's answer is reshaped."""
    body = ANSWERS[path]
    with TestClient(answering(path, body)) as client:
        as_json = client.get(path)
        by_header = client.get(path, headers={"Accept": "text/toon"})
        by_query = client.get(path, params={"format": "toon"})
    assert as_json.json() == body
    for answer in (by_header, by_query):
        assert answer.headers["content-type"] == "text/toon; charset=utf-8"
        assert answer.text == toon.encode(body)
        assert toon_format.decode(answer.text) == as_json.json()


def test_a_dst_day_of_availability_decodes_to_the_json_answer() -> None:
    dst_day = {**AVAILABILITY, "date": "2026-03-08", "slots": [
        {"start": "2026-03-08T00:00:00-05:00", "end": "2026-03-08T05:00:00-04:00"}]}  # fmt: skip
    path = "/public/alice/availability"
    with TestClient(answering(path, dst_day)) as client:
        assert toon_format.decode(client.get(path, params={"format": "toon"}).text) == dst_day


def test_toon_is_smaller_than_json_for_the_seed_examples() -> None:
    for body in (SEED_DASHBOARD, AVAILABILITY):
        tokens = toon.count_tokens(toon.encode(body))
        assert tokens < toon.count_tokens(json.dumps(body, indent=2))


_figure = st.none() | st.integers(0, 10**9)


@settings(max_examples=80, deadline=None)
@given(
    plan=st.fixed_dictionaries(
        {name: _figure for name in PlanSummary.model_fields}
        | {
            "tier": st.sampled_from([None, "starter", "pro", "business"]),
            "user_type": st.sampled_from([None, "individual", "agent"]),
        }
    ),
    calendars=st.lists(
        st.fixed_dictionaries(
            {
                "provider": st.sampled_from(["google", "outlook", "caldav"]),
                "email": st.emails(),
                "calendar_count": st.integers(0, 500),
            }
        ),
        max_size=3,
    ),
    unavailable=st.lists(st.sampled_from(["billing", "calendars", "identity"]), unique=True),
)
def test_dashboards_round_trip(
    plan: dict[str, Any], calendars: list[dict[str, Any]], unavailable: list[str]
) -> None:
    body: dict[str, Any] = {"plan": plan, "calendars": calendars, "recent_activity": [
        {"id": "act_1", "type": "booking.confirmed", "summary": "Intro, 5/20",
         "occurred_at": "2026-03-15T14:00:00Z", "ids": {"booking_id": "bk_1"}}]}  # fmt: skip
    if unavailable:
        body["unavailable"] = unavailable
    assert toon_format.decode(toon.encode(body)) == body


ROUND_TRIPS = {
    "nested objects": {"a": {"b": {"c": {"d": [1, {"e": None}]}}}, "f": {"g": True}},
    "uniform array": [{"id": i, "name": f"n{i}", "ok": i % 2 == 0} for i in range(5)],
    "mixed array": [1, "two", None, True, 3.5, {"k": "v"}, [1, 2], []],
    "array of arrays": [[1, 2], [3, 4], ["a", "b"]],
    "unicode": {
        "名前": "Zoë 🚀",
        "emoji key 🙂": "ß \u2013 \u201cquotes\u201d \\ back\\slash",
        "rtl": "שלום",
    },
    "numbers": [0, -1, 10**15, -(10**15), 1.5, -0.25, 1e-7, 6.02e23, 0.1 + 0.2],
    "empty containers": {"o": {}, "a": [], "s": "", "nested": [{}, [], {"x": []}]},
    "strings like numbers": ["42", "-7", "3.14", "1e5", "0x1F", "05", "-0", "1_000", " 1"],
    "strings like literals": ["true", "false", "null", "[]", "{}", "-", "a: b", "x,y", "#"],
    "keys that need quoting": {"1": "one", "a b": 1, "with:colon": 2, "": 3, "-": 4},
    "whitespace": {"lead": "  x", "trail": "x  ", "newline": "a\nb", "tab": "a\tb"},
    "top-level scalar": "just text",
    "uniform rows with nested values": [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}],
}


@pytest.mark.parametrize("value", list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS))
def test_toon_round_trips_through_the_route(client: TestClient, value: Any) -> None:
    body = client.post("/api/v1/toon/encode", json={"json": value}).json()
    assert toon_format.decode(body["toon"]) == value


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
