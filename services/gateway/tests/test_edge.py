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


SEED_DASHBOARD = {  # the REST reference's example, verbatim
    "plan": {
        "tier": "starter", "user_type": "individual", "calendars_connected": 2,
        "calendars_limit": None, "bookings_used": 5, "bookings_limit": 20,
        "calls_today": 42, "calls_daily_limit": None,
    },
    "calendars": [{"provider": "google", "email": "[email protected]", "calendar_count": 3}],
    "recent_activity": [],
}  # fmt: skip


def expand_dashboard(compact: dict[str, Any]) -> dict[str, Any]:
    """The inverse of the compact dashboard view, as a client would read it."""

    def figures(value: int | str | None) -> tuple[int | None, int | None]:
        if not isinstance(value, str):
            return value, None
        used, limit = value.split("/")
        return (None if used == "?" else int(used)), int(limit)

    plan: dict[str, Any] = {"tier": compact["plan"], "user_type": compact["user_type"]}
    for name, used, limit in toon.DASHBOARD_USAGE:
        plan[used], plan[limit] = figures(compact["usage"][name])
    calendars = [
        {("calendar_count" if k == "count" else k): v for k, v in c.items()}
        for c in compact["calendars"]
    ]
    rest = {k: v for k, v in compact.items() if k not in ("plan", "user_type", "usage")}
    return {"plan": plan, **rest, "calendars": calendars}


def test_dashboard_in_toon_is_compact_and_lossless() -> None:
    text = toon.render("/api/v1/dashboard/summary", SEED_DASHBOARD)
    assert expand_dashboard(toon_format.decode(text)) == SEED_DASHBOARD
    assert "bookings: 5/20" in text and "calls_today: 42" in text
    tokens = toon.count_tokens(text)
    assert tokens <= 0.8 * toon.count_tokens(json.dumps(SEED_DASHBOARD, separators=(",", ":")))
    assert tokens <= 0.6 * toon.count_tokens(json.dumps(SEED_DASHBOARD, indent=2))


def test_compact_dashboard_covers_every_plan_figure() -> None:
    covered = {"tier", "user_type"} | {k for _, *pair in toon.DASHBOARD_USAGE for k in pair}
    assert covered == set(PlanSummary.model_fields)


_figure = st.none() | st.integers(0, 10**9)


@settings(max_examples=80, deadline=None)
@given(
    plan=st.fixed_dictionaries(
        {
            "tier": st.sampled_from([None, "starter", "pro", "business"]),
            "user_type": st.sampled_from([None, "individual", "agent"]),
            **{k: _figure for _, *pair in toon.DASHBOARD_USAGE for k in pair},
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
def test_compact_dashboard_round_trips(
    plan: dict[str, Any], calendars: list[dict[str, Any]], unavailable: list[str]
) -> None:
    body: dict[str, Any] = {"plan": plan, "calendars": calendars, "recent_activity": [
        {"id": "act_1", "type": "booking.confirmed", "summary": "Intro, 5/20",
         "occurred_at": "2026-03-15T14:00:00Z", "ids": {"booking_id": "bk_1"}}]}  # fmt: skip
    if unavailable:
        body["unavailable"] = unavailable
    decoded = toon_format.decode(toon.render("/api/v1/dashboard/summary", body))
    assert expand_dashboard(decoded) == body


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
