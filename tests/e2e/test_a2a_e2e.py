"""A2A on public pages, against a running system with two gateways: the agent card (an
a2a-sdk AgentCard), Temporal Cortex's JSON-RPC methods and their errors, a private page's
404, a stock a2a-sdk client booking through SendMessage, and the per-IP limits."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.client.card_resolver import parse_agent_card
from a2a.types import Message, Part, Role, SendMessageRequest
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from tests.e2e.harness import (
    Owner,
    System,
    SystemOptions,
    at,
    availability,
    client_ips,
    future_day,
    holds,
    new_owner,
)

pytestmark = pytest.mark.e2e

BOOK_PER_HOUR = 3
client_ip = client_ips("198.51.100.")  # each call a client of its own (a fresh per-IP budget)


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        replicas={"gateway": 2},
        environ={
            "CORTEX_GATEWAY_TRUSTED_PROXIES": "127.0.0.1/32",  # each test its own client IP
            "CORTEX_GATEWAY_RATE_BOOK_PER_HOUR": str(BOOK_PER_HOUR),
            "CORTEX_GATEWAY_BOOKING_TIMEOUT_SECONDS": "20",
        },
    )


def rpc(
    gateway: str, slug: str, method: str, params: Any = None, *, headers: dict[str, str]
) -> httpx.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": uuid.uuid4().hex[:8], "method": method}
    if params is not None:
        body["params"] = params
    return httpx.post(f"{gateway}/public/{slug}/a2a", json=body, headers=headers, timeout=60)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["jsonrpc"] == "2.0" and "result" not in body, body
    error: dict[str, Any] = body["error"]
    return error


def slot_params(hour: int, minute: int = 0, **extra: object) -> dict[str, Any]:
    day = future_day(4)
    return {
        "start": at(day, hour, minute).isoformat(),
        "end": at(day, hour, minute + 30).isoformat(),
        "title": "Intro call",
        "attendee_email": "agent@example.org",
        **extra,
    }


def test_the_card_is_an_a2a_agent_card_for_this_page(system: System, owner: Owner) -> None:
    for gateway in system.gateways:
        response = httpx.get(
            f"{gateway}/public/{owner.slug}/.well-known/agent-card.json", headers=client_ip()
        )
        assert response.status_code == 200, response.text
        served = response.json()
        card = parse_agent_card(copy.deepcopy(served))  # what a stock client does
        validate_proto_required_fields(card)
        endpoint = f"{gateway}/public/{owner.slug}/a2a"
        assert {i.url for i in card.supported_interfaces} == {endpoint}
        assert {i.protocol_version for i in card.supported_interfaces} == {"1.0", "0.3"}
        assert [s.id for s in card.skills] == ["query_availability", "book_slot"]
        assert served["url"] == endpoint  # the v0.3 field, as Temporal Cortex's card has


def test_a_page_that_is_not_public_is_one_404(system: System) -> None:
    closed = new_owner(system)  # Open Scheduling off
    unknown = f"nobody-{uuid.uuid4().hex[:8]}"
    answers = []
    for slug in (closed.slug, unknown):
        card = httpx.get(
            f"{system.gateway}/public/{slug}/.well-known/agent-card.json", headers=client_ip()
        )
        called = rpc(system.gateway, slug, "query_availability", {"date": "2030-01-01"},
                     headers=client_ip())  # fmt: skip
        garbage = httpx.post(
            f"{system.gateway}/public/{slug}/a2a",
            content=b"{not json",
            headers={"Content-Type": "application/json", **client_ip()},
        )
        for response in (card, called, garbage):
            assert response.status_code == 404, response.text
            answers.append(response.json())
    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0]["code"] == "page_not_found"


def test_query_availability_is_the_rest_answer(system: System, owner: Owner) -> None:
    day = future_day(6)
    params = {"date": day.isoformat(), "duration": 45, "timezone": "Europe/Paris"}
    response = rpc(system.gateways[1], owner.slug, "query_availability",
                   params, headers=client_ip())  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] == availability(system, owner, day, **params)
    assert body["result"]["duration"] == 45 and body["result"]["slots"]


def test_book_slot_books_and_a_taken_slot_is_a_slot_conflict(system: System, owner: Owner) -> None:
    headers = client_ip()
    booked = rpc(system.gateways[0], owner.slug, "book_slot", slot_params(9), headers=headers)
    assert booked.status_code == 200, booked.text
    result = booked.json()["result"]
    assert result["status"] == "confirmed", result
    detail = httpx.get(
        f"{system.gateway}/api/v1/bookings/{result['booking_id']}", headers=owner.auth
    )
    assert detail.status_code == 200 and detail.json()["attendee_email"] == "agent@example.org"

    again = error_of(
        rpc(system.gateways[1], owner.slug, "book_slot",
            slot_params(9, 15, attendee_email="other@example.org"), headers=headers)
    )  # fmt: skip
    assert again["code"] == -32001, again
    assert again["data"]["reason"] == "slot_conflict"
    # the same refusal as REST's 409 (one implementation), with booking's details: the
    # clashing event and the next free slots, as far as booking gives them
    rest = httpx.post(f"{system.gateway}/public/{owner.slug}/book",
                      json=slot_params(9, 15, attendee_email="other@example.org"),
                      headers=client_ip())  # fmt: skip
    assert rest.status_code == 409, rest.text
    assert again["message"] == rest.json()["error"], (again, rest.json())
    assert again["data"]["code"] == rest.json()["code"] == "slot_unavailable"
    if "start" in again["data"]:
        clash = (again["data"]["start"], again["data"]["end"])
        assert datetime.fromisoformat(clash[0]) < datetime.fromisoformat(result["end"])
        assert datetime.fromisoformat(clash[1]) > datetime.fromisoformat(result["start"])
    for slot in again["data"].get("next_slots", []):
        assert {"start", "end"} <= set(slot)


def test_each_error_has_its_code(system: System, owner: Owner) -> None:
    gw = system.gateway
    headers = client_ip()
    slug = owner.slug
    unknown = error_of(rpc(gw, slug, "cancel_everything", {}, headers=headers))
    assert unknown["code"] == -32601

    missing = error_of(rpc(gw, slug, "query_availability", {}, headers=headers))
    assert missing["code"] == -32602 and missing["data"]["param"] == "date"
    short = error_of(
        rpc(gw, slug, "query_availability", {"date": "2030-01-01", "duration": 2}, headers=headers)
    )
    assert short["code"] == -32602 and short["data"]["param"] == "duration"
    assert "5" in short["data"]["problem"]
    positional = error_of(rpc(gw, slug, "query_availability", ["2030-01-01"], headers=headers))
    assert positional["code"] == -32602 and positional["data"]["param"] == "params"
    no_email = slot_params(11)
    del no_email["attendee_email"]
    booking = error_of(rpc(gw, slug, "book_slot", no_email, headers=headers))
    assert booking["code"] == -32602 and booking["data"]["param"] == "attendee_email"
    zone = error_of(
        rpc(gw, slug, "query_availability", {"date": "2030-01-01", "timezone": "Mars/Base"},
            headers=headers)
    )  # fmt: skip
    assert zone["code"] == -32602, zone  # booking's own refusal, as bad params

    url = f"{gw}/public/{slug}/a2a"
    json_headers = {"Content-Type": "application/json", **headers}
    parse = httpx.post(url, content=b'{"jsonrpc": "2.0", "method": ', headers=json_headers)
    assert parse.status_code == 200 and parse.json()["error"]["code"] == -32700
    assert parse.json()["id"] is None
    for invalid in ([{"jsonrpc": "2.0", "method": "query_availability"}],
                    {"jsonrpc": "1.0", "method": "query_availability", "id": 1},
                    {"jsonrpc": "2.0", "id": 2}, "hello"):  # fmt: skip
        answer = httpx.post(url, json=invalid, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["error"]["code"] == -32600, (invalid, answer.json())


def data_part(value: dict[str, Any]) -> Part:
    data = Value()
    ParseDict(value, data)
    return Part(data=data)


async def send(client: Any, value: dict[str, Any]) -> dict[str, Any]:
    """SendMessage with one data part; the data part of the agent's answer."""
    request = SendMessageRequest(
        message=Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[data_part(value)])
    )
    answers = [event async for event in client.send_message(request)]
    assert len(answers) == 1 and answers[0].HasField("message"), answers
    reply = answers[0].message
    assert reply.role == Role.ROLE_AGENT
    data = [MessageToDict(p.data) for p in reply.parts if p.HasField("data")]
    assert len(data) == 1, reply
    result: dict[str, Any] = data[0]
    return result


def test_a_stock_a2a_client_books_through_send_message(system: System, owner: Owner) -> None:
    day = future_day(4)

    async def scenario(gateway: str) -> tuple[dict[str, Any], ...]:
        async with httpx.AsyncClient(headers=client_ip(), timeout=60) as http:
            client = await create_client(
                f"{gateway}/public/{owner.slug}",
                client_config=ClientConfig(httpx_client=http, streaming=False),
            )
            free = await send(
                client, {"skill": "query_availability", "date": day.isoformat(), "duration": 30}
            )
            booked = await send(client, {"skill": "book_slot", **slot_params(14)})
            taken = await send(client, {"skill": "book_slot", "arguments": slot_params(14, 10)})
            nameless = await send(client, {"date": day.isoformat()})
            await client.close()
            return free, booked, taken, nameless

    free, booked, taken, nameless = asyncio.run(scenario(system.gateways[1]))
    assert free["duration"] == 30 and free["slots"]
    assert holds(free["slots"], at(day, 14), at(day, 14, 30))
    assert booked["status"] == "confirmed", booked
    detail = httpx.get(f"{system.gateway}/api/v1/bookings/{booked['booking_id']}",
                       headers=owner.auth)  # fmt: skip
    assert detail.status_code == 200 and detail.json()["status"] == "confirmed"
    assert taken["error"]["code"] == -32001 and taken["error"]["data"]["reason"] == "slot_conflict"
    assert nameless["error"]["code"] == -32602 and nameless["error"]["data"]["param"] == "skill"
    # the slot is taken for the JSON-RPC method too
    again = rpc(system.gateway, owner.slug, "query_availability",
                {"date": day.isoformat(), "duration": 30}, headers=client_ip())  # fmt: skip
    slots = again.json()["result"]["slots"]
    assert not holds(slots, at(day, 14), at(day, 14, 30))
    assert holds(slots, at(day, 14, 30), at(day, 15)), slots


def test_booking_is_limited_per_ip_as_on_rest(system: System, owner: Owner) -> None:
    headers = client_ip()
    bad = slot_params(16)
    del bad["title"]  # refused params count like REST's 400s: no booking is made here
    for i in range(BOOK_PER_HOUR):
        gateway = system.gateways[i % 2]
        assert error_of(rpc(gateway, owner.slug, "book_slot", bad, headers=headers))["code"] == (
            -32602
        )
    limited = rpc(system.gateways[1], owner.slug, "book_slot", bad, headers=headers)
    assert limited.status_code == 429, limited.text
    error = limited.json()["error"]
    assert error["code"] == -32029 and error["data"]["reason"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) == error["data"]["retry_after"] >= 1
    assert limited.headers["X-RateLimit-Limit"] == str(BOOK_PER_HOUR)
    # one counter with the REST route
    rest = httpx.post(f"{system.gateway}/public/{owner.slug}/book", json=slot_params(16),
                      headers=headers)  # fmt: skip
    assert rest.status_code == 429, rest.text
    # SendMessage's book_slot counts against the same limit; availability has its own
    send_message = httpx.post(
        f"{system.gateway}/public/{owner.slug}/a2a",
        json={
            "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
            "params": {"message": {"messageId": "m1", "role": "ROLE_USER",
                                   "parts": [{"data": {"skill": "book_slot", **slot_params(16)}}]}},
        },
        headers={"A2A-Version": "1.0", **headers},
    )  # fmt: skip
    assert send_message.status_code == 429, send_message.text
    free = rpc(system.gateway, owner.slug, "query_availability",
               {"date": future_day(4).isoformat()}, headers=headers)  # fmt: skip
    assert free.status_code == 200 and "result" in free.json(), free.text


def test_a_v03_client_message_send_is_answered_too(system: System, owner: Owner) -> None:
    """The card's 0.3 interface: the SDK's compat adapter, the same skills."""
    day = future_day(6)
    response = httpx.post(
        f"{system.gateway}/public/{owner.slug}/a2a",
        json={
            "jsonrpc": "2.0", "id": "v03", "method": "message/send",
            "params": {"message": {
                "kind": "message", "messageId": "m-03", "role": "user",
                "parts": [{"kind": "data", "data": {"skill": "query_availability",
                                                    "date": day.isoformat()}}],
            }},
        },
        headers=client_ip(),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    data = [p["data"] for p in result["parts"] if p.get("kind") == "data"]
    assert data == [availability(system, owner, day)], result
