"""TOON is an encoding, not a view (issue 15): through the whole system, every TOON answer
decodes (``toon_format``) to exactly the JSON answer of the same request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import toon_format

from tests.e2e.harness import Owner, System, at, book, eventually, future_day, make_owner

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def owner(system: System) -> Owner:
    """An owner in New York with one booking."""
    owner = make_owner(system, timezone="America/New_York")
    day = future_day(4)
    booked = book(system.gateway, owner, at(day, 15), at(day, 15, 30))
    assert booked.status_code in (201, 202), booked.text
    eventually(
        lambda: system.gw0.get("/api/v1/bookings", headers=owner.auth).json()["bookings"],
        "the booking is listed",
    )
    return owner


def _without_call_count(body: Any) -> Any:
    """Every call counts toward calls/day, the dashboard's ``calls_today`` with it."""
    if isinstance(body, dict) and isinstance(body.get("plan"), dict):
        plan = {k: v for k, v in body["plan"].items() if k != "calls_today"}
        return {**body, "plan": plan}
    return body


def _same_answers(client: httpx.Client, path: str, **kwargs: Any) -> None:
    def fetch() -> tuple[Any, httpx.Response, Any]:
        first = client.get(path, **kwargs)
        as_toon = client.get(path, **{**kwargs, "headers": {
            **kwargs.get("headers", {}), "Accept": "text/toon"}})  # fmt: skip
        last = client.get(path, **kwargs)
        assert first.status_code == as_toon.status_code == last.status_code == 200, as_toon.text
        return first.json(), as_toon, last.json()

    def settled() -> tuple[Any, httpx.Response] | None:
        first, as_toon, last = fetch()
        return (last, as_toon) if _without_call_count(first) == _without_call_count(last) else None

    expected, as_toon = eventually(settled, f"{path} answers the same twice")
    assert as_toon.headers["content-type"] == "text/toon; charset=utf-8"
    decoded = toon_format.decode(as_toon.text)
    if "dashboard" in path:
        # the TOON call came just before the second JSON one: one call fewer, or the same
        assert decoded["plan"]["calls_today"] in (
            expected["plan"]["calls_today"] - 1,
            expected["plan"]["calls_today"],
        )
        assert _without_call_count(decoded) == _without_call_count(expected)
    else:
        assert decoded == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/dashboard/summary",
        "/api/v1/settings",
        "/api/v1/bookings",
        "/api/v1/activity",
        "/api/v1/calendars",
    ],
)
def test_owner_answers_in_toon_decode_to_the_json_answers(
    system: System, owner: Owner, path: str
) -> None:
    _same_answers(system.gw0, path, headers=owner.auth)


@pytest.mark.parametrize("timezone", ["America/New_York", "Europe/Berlin", "Asia/Kolkata"])
def test_availability_in_toon_decodes_to_the_json_answer(
    system: System, owner: Owner, timezone: str
) -> None:
    day = future_day(4).isoformat()
    path = f"/public/{owner.slug}/availability"
    _same_answers(system.gw0, path, params={"date": day, "timezone": timezone})
    as_toon = system.gw0.get(path, params={"date": day, "timezone": timezone, "format": "toon"})
    decoded = toon_format.decode(as_toon.text)
    assert decoded["slots"] and all("T" in slot["start"] for slot in decoded["slots"])
