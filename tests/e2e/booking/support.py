"""What the booking end-to-end modules share: owners on Radicale, booking requests, the
databases' rows, the gateway's hand-over, and a CalDAV proxy that can fail on cue."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx

from contracts import booking as booking_msg
from contracts import gateway as gateway_msg
from contracts import subjects
from cortex_dev.embedded import Radicale
from cortex_dev.stack import Stack
from cortex_runtime.broker import build_broker, ensure_stream, event_stream, publish_raw


@dataclass
class System:
    stack: Stack
    radicale: Radicale

    @property
    def gateways(self) -> list[str]:
        return self.stack.gateway_urls


@dataclass
class Owner:
    slug: str
    key: str
    calendar_url: str
    user: str
    password: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_owner(system: System, *, caldav_server: str | None = None, **rules: object) -> Owner:
    """A tenant with an open page, every day 08:00-18:00 UTC, and a Radicale calendar
    connected (through ``caldav_server`` when given, e.g. a :class:`CaldavProxy`)."""
    slug = f"owner-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [sys.executable, "-m", "cortex_dev.cli", "tenant", "create", "--email", f"{slug}@example.com",
         "--slug", slug, "--name", "Owner"],
        env={**os.environ, "CORTEX_NATS_URL": system.stack.nats_url},
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    key = json.loads(out.stdout)["api_key"]
    user, password = slug, uuid.uuid4().hex
    system.radicale.add_user(user, password)
    calendar_url = f"{system.radicale.url}{user}/work/"
    mkcol = (
        '<?xml version="1.0"?><mkcol xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<set><prop><resourcetype><collection/><C:calendar/></resourcetype>"
        "<displayname>work</displayname></prop></set></mkcol>"
    )
    made = httpx.request("MKCOL", calendar_url, content=mkcol, auth=(user, password))
    assert made.status_code == 201, made.text
    owner = Owner(slug, key, calendar_url, user, password)
    gw = system.gateways[0]
    every_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    put = {
        "/api/v1/settings/timezone": {"timezone": "UTC"},
        "/api/v1/settings/working-hours": {
            "working_hours": {d: [{"start": "08:00", "end": "18:00"}] for d in every_day}
        },
        "/api/v1/settings/booking-rules": {"min_notice_hours": 0, "max_advance_days": 60, **rules},
        "/api/v1/settings/open-scheduling": {"enabled": True},
    }
    for path, body in put.items():
        response = httpx.put(f"{gw}{path}", json=body, headers=owner.auth, timeout=10)
        assert response.status_code == 200, response.text
    connected = httpx.post(
        f"{gw}/api/v1/calendars/caldav",
        json={"server_url": caldav_server or system.radicale.url, "username": user,
              "password": password},
        headers=owner.auth, timeout=30,
    )  # fmt: skip
    assert connected.status_code == 201, connected.text
    day = future_day(3).isoformat()
    for _ in range(100):
        page = httpx.get(f"{gw}/public/{slug}/availability", params={"date": day})
        if page.status_code == 200:
            break
        time.sleep(0.1)
    return owner


def future_day(offset: int = 5) -> date:
    return (datetime.now(UTC) + timedelta(days=offset)).date()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def booking_body(start: datetime, end: datetime, **extra: object) -> dict[str, object]:
    return {
        "title": "Intro call", "start": start.isoformat(), "end": end.isoformat(),
        "attendee_email": "guest@example.org", **extra,
    }  # fmt: skip


def book(
    gw: str,
    owner: Owner,
    start: datetime,
    end: datetime,
    *,
    key: str | None = None,
    **extra: object,
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(
        f"{gw}/public/{owner.slug}/book",
        json=booking_body(start, end, **extra),
        headers=headers,
        timeout=60,
    )


def radicale_uids(owner: Owner) -> list[str]:
    """The resource names (our UIDs) of the events in the owner's Radicale calendar."""
    listing = httpx.request(
        "PROPFIND", owner.calendar_url, headers={"Depth": "1"}, auth=(owner.user, owner.password)
    )
    return re.findall(r"/([^/<]+)\.ics</", listing.text)


def _fetch(system: System, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        url = system.stack.database_urls[service].replace("+asyncpg", "")
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def booking_row(system: System, booking_id: str) -> asyncpg.Record | None:
    rows = _fetch(system, "booking", "SELECT * FROM bookings WHERE id = $1", booking_id)
    return rows[0] if rows else None


def reservation(system: System, booking_id: str) -> asyncpg.Record | None:
    rows = _fetch(
        system, "billing", "SELECT * FROM quota_reservations WHERE booking_id = $1", booking_id
    )
    return rows[0] if rows else None


def hand_over(system: System, command: booking_msg.CreateBooking) -> None:
    """What the gateway does when booking did not answer in time."""

    async def go() -> None:
        broker = build_broker(system.stack.nats_url, "test-handover")
        async with broker:
            await broker.connect()
            await ensure_stream(broker, event_stream(subjects.GATEWAY))
            await publish_raw(
                broker,
                gateway_msg.BOOKING_UNANSWERED.subject,
                command.model_dump_json().encode(),
                {"Nats-Msg-Id": command.booking_id},
            )

    asyncio.run(go())


def wait_for(check: Callable[[], object], timeout: float, every: float = 0.3) -> object:
    """Poll ``check`` until it returns something truthy; that value (else the last one)."""
    deadline = time.monotonic() + timeout
    result = check()
    while not result and time.monotonic() < deadline:
        time.sleep(every)
        result = check()
    return result


def process_id(system: System, name: str) -> int:
    child = system.stack.child(name)
    assert child.process is not None
    return child.process.pid


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class CaldavProxy:
    """A CalDAV server address that forwards every request to Radicale; a test sets
    :attr:`on_write` to act when an event is written (``PUT <uid>.ics``): return a status
    to answer instead of Radicale, or None to forward it."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.on_write: Callable[[str], int | None] | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                hook = proxy.on_write
                if self.command == "PUT" and self.path.endswith(".ics") and hook is not None:
                    status = hook(self.path)
                    if status is not None:
                        self.send_response(status)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}
                }
                answer = httpx.request(
                    self.command, f"{proxy.target}{self.path}", content=body, headers=headers,
                    timeout=30,
                )  # fmt: skip
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_DELETE = do_POST = do_HEAD = do_OPTIONS = _forward
            do_PROPFIND = do_PROPPATCH = do_REPORT = do_MKCOL = do_MOVE = do_COPY = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
