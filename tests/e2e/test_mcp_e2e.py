"""The MCP door end to end: the SDK's own clients over real HTTP against a running system with
two gateway replicas, calls alternating between them (no sticky sessions).

Both protocols: the session-based one (``ClientSession`` + ``streamable_http_client``,
``initialize`` negotiating 2025-11-25) and the session-less one the high-level ``Client``
speaks by default. Every tool, public and owner, a conflict, a per-IP rate limit shared with
REST, a key revoked on REST refused on MCP, the calls/day counter.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import toon_format
from mcp import ClientSession
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult

from tests.e2e.harness import (
    Owner,
    System,
    SystemOptions,
    at,
    client_ips,
    eventually,
    future_day,
    make_owner,
    new_owner,
)

pytestmark = pytest.mark.e2e

AVAILABILITY_PER_MINUTE = 6
fresh_ip = client_ips("203.0.113.")
_turn = itertools.count()

PUBLIC_TOOLS = {"resolve_identity", "query_public_availability", "request_booking"}
TIME_TOOLS = {
    "get_temporal_context",
    "convert_timezone",
    "compute_duration",
    "adjust_timestamp",
    "expand_rrule",
}
OWNER_TOOLS = {
    "get_settings",
    "update_booking_rules",
    "update_working_hours",
    "set_open_scheduling",
    "get_availability",
    "find_free_slots",
    "list_bookings",
    "get_booking",
    "confirm_booking",
    "decline_booking",
    "cancel_booking",
    "reschedule_booking",
    "list_calendars",
    "list_callers",
    "upsert_caller",
    "list_policies",
    "create_policy",
    "get_dashboard",
    "list_activity",
}


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        replicas={"gateway": 2},
        environ={
            "CORTEX_GATEWAY_TRUSTED_PROXIES": "127.0.0.1/32",  # each client its own IP
            "CORTEX_GATEWAY_RATE_AVAILABILITY_PER_MINUTE": str(AVAILABILITY_PER_MINUTE),
            "CORTEX_GATEWAY_BOOKING_TIMEOUT_SECONDS": "20",
        },
    )


@pytest.fixture(scope="module")
def owner(system: System) -> Owner:
    # not connected: the page is the owner's working hours and this system's own bookings
    return make_owner(system, connect=False, hours=("08:00", "18:00"))


def next_gateway(system: System) -> str:
    """The replicas in turn: consecutive calls never hit the same gateway twice."""
    return system.gateways[next(_turn) % len(system.gateways)]


@asynccontextmanager
async def session(url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    """The session-based protocol: initialize, then calls."""
    client = create_mcp_http_client(headers=headers)
    async with (
        client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as opened,
    ):
        yield opened


def call(
    system: System,
    tool: str,
    arguments: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    ip: dict[str, str] | None = None,
) -> CallToolResult:
    """One tool call with the high-level Client (session-less by default) on the next
    gateway."""
    headers = dict(ip or fresh_ip())
    if key:
        headers["Authorization"] = f"Bearer {key}"
    url = next_gateway(system)

    async def go() -> CallToolResult:
        http = create_mcp_http_client(headers=headers)
        async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp:
            return await mcp.call_tool(tool, arguments or {})

    return asyncio.run(go())


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def refused(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    body = result.structured_content
    assert body is not None and isinstance(body.get("error"), str), result.content
    return body


def text(result: CallToolResult) -> str:
    block = result.content[0]
    assert block.type == "text"
    return block.text


# --- discovery, both protocols ------------------------------------------------------------


def test_both_protocols_list_every_tool_with_schemas_and_annotations(system: System) -> None:
    async def with_session(url: str) -> tuple[str, list[Any]]:
        async with session(url, fresh_ip()) as opened:
            initialized = await opened.initialize()
            return initialized.protocol_version, (await opened.list_tools()).tools

    async def without_session(url: str) -> list[Any]:
        async with Client(f"{url}/mcp") as mcp:
            return (await mcp.list_tools()).tools

    version, tools = asyncio.run(with_session(system.gateways[0]))
    assert version == "2025-11-25"
    modern = asyncio.run(without_session(system.gateways[1]))
    assert {t.name for t in tools} == {t.name for t in modern}
    assert {t.name for t in tools} == PUBLIC_TOOLS | OWNER_TOOLS | TIME_TOOLS
    by_name = {t.name: t for t in tools}
    for tool in tools:
        assert tool.output_schema is not None, tool.name
        assert tool.description, tool.name
        assert "format" in tool.input_schema["properties"], tool.name
    assert by_name["query_public_availability"].annotations.read_only_hint is True
    assert by_name["cancel_booking"].annotations.destructive_hint is True
    reschedule = by_name["reschedule_booking"].annotations
    assert (reschedule.destructive_hint, reschedule.idempotent_hint) == (False, True)
    assert by_name["request_booking"].annotations.idempotent_hint is False
    assert by_name["upsert_caller"].annotations.idempotent_hint is True
    availability = by_name["query_public_availability"].input_schema
    assert set(availability["required"]) == {"slug", "date"}
    assert availability["properties"]["duration"]["description"]
    assert set(by_name["find_free_slots"].input_schema["required"]) == {"from", "to", "duration"}


def test_a_session_serves_calls_on_whichever_replica(system: System, owner: Owner) -> None:
    """A session opened on one gateway goes on at the other: stateless, no sticky sessions."""

    async def go() -> tuple[Any, Any]:
        async with session(system.gateways[0], fresh_ip()) as opened:
            await opened.initialize()
            first = await opened.call_tool("get_temporal_context", {"timezone": "Europe/Berlin"})
        client = create_mcp_http_client(headers=fresh_ip())
        async with (
            client,
            streamable_http_client(f"{system.gateways[1]}/mcp", http_client=client) as (r, w),
            ClientSession(r, w) as other,
        ):
            await other.initialize()
            second = await other.call_tool("resolve_identity", {"identity": "x@example.com"})
        return first, second

    first, second = asyncio.run(go())
    assert ok(first)["timezone"] == "Europe/Berlin"
    assert refused(second)["code"] == "identity_not_found"


# --- public tools --------------------------------------------------------------------------


def test_public_tools_resolve_query_and_book_in_toon_or_json(system: System, owner: Owner) -> None:
    email = f"{owner.slug}@example.com"
    resolved = call(system, "resolve_identity", {"identity": email})
    body = ok(resolved)
    assert body["slug"] == owner.slug
    assert body["booking_url"].endswith(f"/public/{owner.slug}/book")
    assert toon_format.decode(text(resolved)) == body  # TOON by default: the same answer
    as_json = call(system, "resolve_identity", {"identity": email, "format": "json"})
    assert json.loads(text(as_json)) == ok(as_json)
    assert ok(as_json)["identity"] == body["identity"] and ok(as_json)["slug"] == owner.slug

    day = future_day(6)
    found = ok(call(system, "query_public_availability", {"slug": owner.slug, "date": str(day)}))
    rest = httpx.get(
        f"{system.gateways[1]}/public/{owner.slug}/availability",
        params={"date": str(day)},
        headers=fresh_ip(),
    ).json()
    assert found == rest  # the same capability behind both doors
    assert found["slots"]

    start, end = at(day, 9), at(day, 9, 30)
    booked = ok(
        call(
            system,
            "request_booking",
            {
                "slug": owner.slug,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "title": "Agent intro",
                "attendee_email": "agent@example.org",
                "attendee_name": "An Agent",
            },
        )
    )
    assert booked["status"] == "confirmed" and booked["booking_id"].startswith("bk_")
    status = httpx.get(f"{system.gateways[0]}/public/{owner.slug}/bookings/{booked['booking_id']}")
    assert status.json()["status"] == "confirmed"


def test_an_unknown_and_a_private_identity_are_one_answer(system: System) -> None:
    private = new_owner(system, "private")  # a real account, Open Scheduling off
    unknown = refused(call(system, "resolve_identity", {"identity": "nobody@nowhere.example"}))
    closed = refused(call(system, "resolve_identity", {"identity": f"{private.slug}@example.com"}))
    assert unknown == closed
    assert unknown["code"] == "identity_not_found"


def test_a_conflict_names_the_clash_and_passes_the_details_through(
    system: System, owner: Owner
) -> None:
    day = future_day(7)
    slot = {
        "slug": owner.slug,
        "start": at(day, 11).isoformat(),
        "end": at(day, 11, 30).isoformat(),
        "title": "First",
        "attendee_email": "first@example.org",
    }
    ok(call(system, "request_booking", slot))
    clash = refused(
        call(system, "request_booking", {**slot, "title": "Second", "attendee_email": "b@x.org"})
    )
    rest = httpx.post(
        f"{system.gateways[0]}/public/{owner.slug}/book",
        # another attendee: the first one's own request again would get its booking back
        json={**{k: v for k, v in slot.items() if k != "slug"}, "attendee_email": "c@x.org"},
        headers=fresh_ip(),
    )
    assert rest.status_code == 409
    assert clash["code"] == rest.json()["code"]
    assert clash["error"] == rest.json()["error"]
    for suggested in clash.get("details", {}).get("next_slots", []):  # when booking offers them
        start, end = (datetime.fromisoformat(suggested[k]) for k in ("start", "end"))
        assert end - start == timedelta(minutes=30)  # the same length as asked


# --- the owner's tools ------------------------------------------------------------------------


def test_owner_tools_without_a_valid_key_say_a_key_is_needed(system: System) -> None:
    for tool in sorted(OWNER_TOOLS):
        arguments: dict[str, Any] = {
            "get_booking": {"booking_id": "bk_" + "0" * 20},
            "confirm_booking": {"booking_id": "bk_" + "0" * 20},
            "decline_booking": {"booking_id": "bk_" + "0" * 20},
            "cancel_booking": {"booking_id": "bk_" + "0" * 20},
            "reschedule_booking": {
                "booking_id": "bk_" + "0" * 20,
                "start": "2030-01-01T10:00:00Z",
                "end": "2030-01-01T10:30:00Z",
            },
            "set_open_scheduling": {"enabled": True},
            "update_working_hours": {"working_hours": {}},
            "find_free_slots": {
                "from": "2030-01-01T00:00:00Z",
                "to": "2030-01-02T00:00:00Z",
                "duration": 30,
            },
            "upsert_caller": {"email": "a@example.org"},
            "create_policy": {
                "name": "n",
                "condition_type": "weekday",
                "condition_value": "sat",
                "action": "deny",
            },
        }.get(tool, {})
        missing = refused(call(system, tool, arguments))
        assert missing["code"] == "unauthorized", tool
        assert "Authorization: Bearer sk_live_" in missing["error"], tool
    bad = refused(call(system, "get_settings", key="sk_live_abcdefgh_" + "A" * 43))
    assert bad["code"] == "unauthorized"


def test_every_owner_tool_over_alternating_replicas(system: System) -> None:
    owner = make_owner(system, connect=False)
    key = owner.key
    before = ok(call(system, "get_dashboard", key=key))["plan"]["calls_today"]

    settings = ok(call(system, "get_settings", key=key))
    assert settings["slug"] == owner.slug
    rules = ok(call(system, "update_booking_rules", {"buffer_minutes": 10}, key=key))
    assert rules["buffer_minutes"] == 10 and rules["max_advance_days"] == 60
    hours = {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
    hours |= {
        "sat": [{"start": "10:00", "end": "12:00"}],
        "sun": [{"start": "10:00", "end": "12:00"}],
    }
    changed = ok(
        call(
            system,
            "update_working_hours",
            {"working_hours": hours, "timezone": "Europe/Berlin"},
            key=key,
        )
    )
    assert changed["timezone"] == "Europe/Berlin" and changed["working_hours"]["sat"]

    # the owner's own availability needs no public page, and is what the page then offers
    day = future_day(8)
    one = ok(call(system, "get_availability", {"date": str(day), "duration": 30}, key=key))
    assert (one["from"], one["to"]) == (str(day), str(day)) and one["slots"]
    assert one.get("busy") is None  # reasons only with explain
    assert one["timezone"] == "Europe/Berlin" and one["duration"] == 30
    assert ok(call(system, "set_open_scheduling", {"enabled": True}, key=key))["open_scheduling"]
    page = httpx.get(
        f"{system.gateways[1]}/public/{owner.slug}/availability",
        params={"date": str(day), "duration": 30},
        headers=fresh_ip(),
    )
    assert page.status_code == 200, page.text
    assert page.json()["slots"] == one["slots"]
    span = ok(
        call(
            system,
            "get_availability",
            {"from": str(day), "to": str(day + timedelta(days=2))},
            key=key,
        )
    )
    assert (span["from"], span["to"]) == (str(day), str(day + timedelta(days=2)))
    one_by_one = [
        ok(call(system, "get_availability", {"date": str(day + timedelta(days=n))}, key=key))
        for n in range(3)
    ]
    assert span["slots"] == [slot for answer in one_by_one for slot in answer["slots"]]
    too_long = {"from": str(day), "to": str(day + timedelta(days=31))}
    assert refused(call(system, "get_availability", too_long, key=key))["code"] == "invalid_range"
    first = one["slots"][0]
    free = ok(
        call(
            system,
            "find_free_slots",
            {"from": first["start"], "to": first["end"], "duration": 30},
            key=key,
        )
    )
    assert free["slots"] and free["duration"] == 30

    ok(call(system, "update_booking_rules", {"confirm_before_booking": True}, key=key))
    made = []
    for hour in (1, 2, 3):  # three pending bookings, one for each decision
        slot = one["slots"][0]["start"]
        start = slot[:11] + f"{9 + hour:02d}:00:00" + slot[19:]
        end = slot[:11] + f"{9 + hour:02d}:30:00" + slot[19:]
        booked = ok(
            call(
                system,
                "request_booking",
                {
                    "slug": owner.slug,
                    "start": start,
                    "end": end,
                    "title": f"Pending {hour}",
                    "attendee_email": f"p{hour}@example.org",
                },
            )
        )
        assert booked["status"] == "pending", booked
        made.append(booked["booking_id"])
    listed = ok(call(system, "list_bookings", {"status": "pending"}, key=key))
    assert {b["booking_id"] for b in listed["bookings"]} == set(made)
    assert ok(call(system, "get_booking", {"booking_id": made[0]}, key=key))["title"] == "Pending 1"
    confirmed = ok(call(system, "confirm_booking", {"booking_id": made[0]}, key=key))
    assert confirmed["status"] in ("confirmed", "pending")
    declined = ok(call(system, "decline_booking", {"booking_id": made[1], "reason": "no"}, key=key))
    assert declined["status"] == "declined"
    cancelled = ok(call(system, "cancel_booking", {"booking_id": made[2]}, key=key))
    assert cancelled["status"] == "cancelled"
    again = refused(call(system, "cancel_booking", {"booking_id": made[2]}, key=key))
    assert again["code"]

    assert ok(call(system, "list_calendars", key=key)) == {"connections": []}
    created = ok(
        call(
            system, "upsert_caller", {"email": "vip@example.org", "trust_level": "trusted"}, key=key
        )
    )
    updated = ok(
        call(
            system,
            "upsert_caller",
            {"email": "VIP@example.org", "display_name": "Very Important"},
            key=key,
        )
    )
    assert updated["id"] == created["id"] and updated["trust_level"] == "trusted"
    assert updated["display_name"] == "Very Important"
    assert [c["id"] for c in ok(call(system, "list_callers", key=key))["callers"]] == [
        created["id"]
    ]
    # upserts of one new address racing on both replicas make one caller
    with ThreadPoolExecutor(6) as pool:
        raced = list(
            pool.map(
                lambda n: ok(
                    call(
                        system,
                        "upsert_caller",
                        {"email": f"{'RACE' if n % 2 else 'race'}@x.org"},
                        key=key,
                    )
                ),
                range(6),
            )
        )
    assert len({c["id"] for c in raced}) == 1
    assert len(ok(call(system, "list_callers", key=key))["callers"]) == 2
    policy = ok(
        call(
            system,
            "create_policy",
            {
                "name": "No Sundays",
                "condition_type": "weekday",
                "condition_value": "sun",
                "action": "deny",
                "priority": 5,
            },
            key=key,
        )
    )
    assert [p["id"] for p in ok(call(system, "list_policies", key=key))["policies"]] == [
        policy["id"]
    ]
    bad_policy = refused(
        call(
            system,
            "create_policy",
            {
                "name": "x",
                "condition_type": "weekday",
                "condition_value": "someday",
                "action": "deny",
            },
            key=key,
        )
    )
    assert bad_policy["code"]
    activity = ok(call(system, "list_activity", {"limit": 5}, key=key))
    assert activity["items"]

    def counted() -> bool:
        after = ok(call(system, "get_dashboard", key=key))["plan"]["calls_today"]
        return after is not None and before is not None and after >= before + 20

    eventually(counted, "the MCP calls counted toward the plan's calls/day", timeout=10)


def test_a_key_revoked_on_rest_stops_working_on_mcp_at_every_replica(system: System) -> None:
    owner = new_owner(system, "revoke")
    created = httpx.post(
        f"{system.gateways[0]}/api/v1/keys", json={"name": "agent"}, headers=owner.auth
    )
    assert created.status_code == 201, created.text
    agent_key, key_id = created.json()["key"], created.json()["id"]
    for _ in system.gateways:  # cached at both replicas
        assert ok(call(system, "get_settings", key=agent_key))["slug"] == owner.slug
    revoked = httpx.delete(f"{system.gateways[1]}/api/v1/keys/{key_id}", headers=owner.auth)
    assert revoked.status_code == 200, revoked.text

    def refused_everywhere() -> bool:
        answers = [call(system, "get_settings", key=agent_key) for _ in system.gateways]
        return all(a.is_error for a in answers)

    eventually(refused_everywhere, "the revoked key refused by both gateways", timeout=5)
    last = refused(call(system, "get_settings", key=agent_key))
    assert last["code"] == "unauthorized" and "revoked" in last["error"]


# --- time tools ---------------------------------------------------------------------------


def test_time_tools(system: System) -> None:
    context = ok(call(system, "get_temporal_context", {"timezone": "Europe/Berlin"}))
    assert context
    converted = ok(
        call(
            system,
            "convert_timezone",
            {"datetime": "2026-03-29T02:30:00", "from_zone": "Europe/Berlin", "to_zone": "UTC"},
        )
    )
    assert converted["resolution"] == "nonexistent_moved_forward"
    duration = ok(
        call(
            system,
            "compute_duration",
            {"start": "2026-03-28T12:00:00+01:00", "end": "2026-03-29T12:00:00+02:00"},
        )
    )
    assert duration["hours"] == 23
    adjusted = ok(
        call(
            system,
            "adjust_timestamp",
            {
                "timestamp": "2026-03-28T12:00:00+01:00",
                "amount": 1,
                "unit": "days",
                "timezone": "Europe/Berlin",
            },
        )
    )
    assert adjusted
    occurrences = ok(
        call(
            system,
            "expand_rrule",
            {
                "rrule": "FREQ=WEEKLY;BYDAY=MO",
                "dtstart": "2026-03-23T09:00:00",
                "timezone": "Europe/Berlin",
                "count": 3,
            },
        )
    )
    assert occurrences
    bad = refused(call(system, "convert_timezone", {"datetime": "x", "to_zone": "Mars/Base"}))
    assert bad["code"] == "invalid_arguments"


# --- the per-IP limit, shared with REST ---------------------------------------------------------


def test_the_availability_limit_is_the_rest_routes_and_says_how_long_to_wait(
    system: System, owner: Owner
) -> None:
    arguments = {"slug": owner.slug, "date": str(future_day(9))}
    for _attempt in range(3):
        # the limit is a sliding window weighing the previous minute's count: calls that
        # straddle a minute's end are counted partly, so such a run is tried again
        ip, minute = fresh_ip(), time.time() // 60
        for _ in range(AVAILABILITY_PER_MINUTE - 1):
            ok(call(system, "query_public_availability", arguments, ip=ip))
        rest = httpx.get(
            f"{system.gateways[0]}/public/{owner.slug}/availability",
            params={"date": arguments["date"]},
            headers=ip,
        )
        assert rest.status_code == 200  # the last one the minute allows, through REST
        result = call(system, "query_public_availability", arguments, ip=ip)
        if time.time() // 60 == minute:
            break
    limited = refused(result)
    assert limited["code"] == "rate_limited"
    assert 0 < limited["retry_after_seconds"] <= 60
    assert f"Try again in {limited['retry_after_seconds']} seconds" in limited["error"]
    again = httpx.get(
        f"{system.gateways[1]}/public/{owner.slug}/availability",
        params={"date": arguments["date"]},
        headers=ip,
    )
    assert again.status_code == 429
