"""What several end-to-end modules share: a system with a Radicale, owners whose calendar is
a Radicale collection, Clerk webhooks signed with the real ``svix`` library, request/reply
over NATS from a test, and the services' databases read directly."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from svix.webhooks import Webhook

from contracts.envelope import Message
from contracts.rpc import Rpc
from cortex_dev.embedded import Radicale, free_port, run_sync
from cortex_dev.stack import Stack, isolated_environ
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient

T = TypeVar("T")
RepT = TypeVar("RepT", bound=Message)

EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Bus:
    """Request/reply over NATS from a private event loop in a thread."""

    def __init__(self, nats_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._broker = build_broker(nats_url, "cortex-e2e-helpers")
        self._run(self._broker.connect())
        self._client = RpcClient(self._broker, timeout=15)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def call(self, rpc: Rpc[Any, RepT], request: Message) -> RepT:
        return self._run(self._client.call(rpc, request))

    def close(self) -> None:
        self._run(self._broker.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@dataclass
class System:
    stack: Stack
    radicale: Radicale
    clerk_secret: str
    bus: Bus
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return self.stack.gateway_urls[0]

    def rows(self, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of a service's own database."""
        url = self.stack.database_urls[service].replace("+asyncpg", "", 1)

        async def go() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(url)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return run_sync(go)


@contextmanager
def running_system(root: Path, **environ: str) -> Iterator[System]:
    """NATS, PostgreSQL, every service, one gateway and a Radicale; ``environ`` is added to
    the services' environment (e.g. ``CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS``)."""
    radicale = Radicale(root / "radicale", free_port()).start()
    clerk_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env = isolated_environ()
    env.update(
        CORTEX_NATS_PORT=str(free_port()),
        CORTEX_POSTGRES_PORT=str(free_port()),
        CORTEX_IDENTITY_CLERK_WEBHOOK_SECRET=clerk_secret,
        **environ,
    )
    stack = Stack(data_dir=root / "data", gateway_port=free_port(), environ=env)
    bus: Bus | None = None
    try:
        stack.up()
        bus = Bus(stack.nats_url)
        yield System(stack, radicale, clerk_secret, bus)
    finally:
        if bus is not None:
            bus.close()
        stack.stop()
        radicale.stop()


def eventually(check: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout}s (last: {result!r})")
        time.sleep(0.1)


def eventually_equal(get: Callable[[], T], expected: T, what: str, timeout: float = 15.0) -> None:
    """Wait until ``get()`` answers ``expected``; the last answer is in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        got = get()
        if got == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: after {timeout}s got {got!r}, expected {expected!r}")
        time.sleep(0.1)


# --- owners and their Radicale calendar ------------------------------------------------


@dataclass
class Owner:
    tenant_id: str
    slug: str
    key: str
    calendar_url: str
    user: str
    password: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def cli_tenant(system: System, slug: str) -> tuple[str, str]:
    """``cortex tenant create``: (tenant id, API key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    out = subprocess.run(
        [sys.executable, "-m", "cortex_dev.cli", "tenant", "create", "--email",
         f"{slug}@example.com", "--slug", slug, "--name", "Owner"],
        env={**env, "CORTEX_NATS_URL": system.stack.nats_url},
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    printed = json.loads(out.stdout)
    return printed["tenant_id"], printed["api_key"]


def radicale_calendar(system: System, user: str, password: str, name: str = "work") -> str:
    """A new Radicale user with one calendar collection; its URL."""
    system.radicale.add_user(user, password)
    url = f"{system.radicale.url}{user}/{name}/"
    mkcol = (
        '<?xml version="1.0"?><mkcol xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<set><prop><resourcetype><collection/><C:calendar/></resourcetype>"
        f"<displayname>{name}</displayname></prop></set></mkcol>"
    )
    created = httpx.request("MKCOL", url, content=mkcol, auth=(user, password))
    assert created.status_code == 201, created.text
    return url


def put_settings(system: System, key: str, timezone: str, **rules: object) -> None:
    """Open page, every day 00:00-23:59 in ``timezone``, no notice, no buffer."""
    headers = {"Authorization": f"Bearer {key}"}
    put = {
        "/api/v1/settings/timezone": {"timezone": timezone},
        "/api/v1/settings/working-hours": {
            "working_hours": {d: [{"start": "00:00", "end": "23:59"}] for d in EVERY_DAY}
        },
        "/api/v1/settings/booking-rules": {"min_notice_hours": 0, "max_advance_days": 60, **rules},
        "/api/v1/settings/open-scheduling": {"enabled": True},
    }
    for path, body in put.items():
        response = httpx.put(f"{system.gateway}{path}", json=body, headers=headers, timeout=15)
        assert response.status_code == 200, response.text


def connect_caldav(system: System, key: str, user: str, password: str) -> dict[str, Any]:
    connected = httpx.post(
        f"{system.gateway}/api/v1/calendars/caldav",
        json={"server_url": system.radicale.url, "username": user, "password": password},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert connected.status_code == 201, connected.text
    body: dict[str, Any] = connected.json()
    return body


def make_owner(system: System, timezone: str = "UTC") -> Owner:
    """A tenant (the operator's command) with an open page in ``timezone`` and an empty
    Radicale calendar, not connected yet."""
    slug = f"owner-{uuid.uuid4().hex[:8]}"
    tenant_id, key = cli_tenant(system, slug)
    password = uuid.uuid4().hex
    calendar_url = radicale_calendar(system, slug, password)
    put_settings(system, key, timezone)
    return Owner(tenant_id, slug, key, calendar_url, slug, password)


def put_event(owner: Owner, name: str, ics: str) -> None:
    response = httpx.put(
        f"{owner.calendar_url}{name}.ics",
        content=ics,
        headers={"Content-Type": "text/calendar"},
        auth=(owner.user, owner.password),
    )
    assert response.status_code in (201, 204), response.text


def radicale_uids(owner: Owner) -> list[str]:
    """The resource names (UIDs) of the events in the owner's Radicale calendar."""
    listing = httpx.request(
        "PROPFIND", owner.calendar_url, headers={"Depth": "1"}, auth=(owner.user, owner.password)
    )
    return re.findall(r"/([^/<]+)\.ics</", listing.text)


def vcalendar(*events: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//cortex-e2e//EN\r\n"
        + "".join(events)
        + "END:VCALENDAR\r\n"
    )


def all_day_event(uid: str, day: date, summary: str = "Offsite") -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;VALUE=DATE:{day:%Y%m%d}\r\nDTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


def floating_event(uid: str, day: date, start: str, end: str, summary: str = "Gym") -> str:
    """A floating-time event (no TZID, no Z): wall-clock ``HHMM`` times of the owner."""
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{day:%Y%m%d}T{start}00\r\nDTEND:{day:%Y%m%d}T{end}00\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


def availability(system: System, owner: Owner, day: date, **params: object) -> dict[str, Any]:
    response = httpx.get(
        f"{system.gateway}/public/{owner.slug}/availability",
        params={"date": day.isoformat(), **params},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def future_day(offset: int) -> date:
    return (datetime.now(UTC) + timedelta(days=offset)).date()


# --- Clerk ------------------------------------------------------------------------------


def clerk_event(event_type: str, data: dict[str, Any]) -> bytes:
    event = {
        "type": event_type,
        "object": "event",
        "data": data,
        "timestamp": int(time.time() * 1000),
        "instance_id": "ins_2abcDEFghiJKLmnoPQRstu",
    }
    return json.dumps(event, separators=(",", ":")).encode()


def clerk_user(
    user_id: str, email: str, first: str = "Ada", last: str = "Lovelace"
) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    return {
        "id": user_id,
        "object": "user",
        "first_name": first,
        "last_name": last,
        "primary_email_address_id": "idn_1",
        "email_addresses": [
            {
                "id": "idn_1",
                "object": "email_address",
                "email_address": email,
                "verification": {"status": "verified", "strategy": "email_code"},
                "linked_to": [],
            }
        ],
        "phone_numbers": [],
        "external_accounts": [],
        "public_metadata": {},
        "private_metadata": {},
        "unsafe_metadata": {},
        "created_at": now_ms,
        "updated_at": now_ms,
    }


def post_clerk(system: System, event_type: str, data: dict[str, Any]) -> httpx.Response:
    """A Clerk webhook, signed with the real svix library, through the gateway."""
    body = clerk_event(event_type, data)
    msg_id = f"msg_{uuid.uuid4().hex}"
    at = datetime.now(UTC)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(system.clerk_secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }
    return httpx.post(
        f"{system.gateway}/api/v1/webhooks/clerk", content=body, headers=headers, timeout=15
    )
