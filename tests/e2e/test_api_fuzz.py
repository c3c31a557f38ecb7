"""Schemathesis over the gateway's ``/openapi.json``, against the whole system as processes.

Every operation is called with a valid API key and with ids of data seeded beforehand (a
tenant with a public page, a CalDAV calendar on Radicale, callers, policies, keys and
bookings; Stripe is a local fake), mixed with generated values, through Schemathesis'
phases: the schema's examples, coverage (boundaries, wrong types, missing parts, unexpected
methods), fuzzing and stateful sequences. Checks: no 5xx; every response's status code is
documented, with the documented content type, body schema and headers; methods a path
does not serve are 405; operations behind the API key refuse requests without it.

No operation is excluded. The webhooks are fuzzed unsigned (they must answer 400), the
OAuth callback with states the server never issued (400). One value is guarded: the key
the run authenticates with is never the one ``DELETE /api/v1/keys/{key_id}`` revokes.

The schema says what the API enforces (issue 14, item 18), so the same run also checks
that requests generated *from* it are accepted: no positive (schema-valid) request is
refused by the gateway's own validation (``invalid_request``), and each operation answers
most of its positive requests with something other than 400, except where a value only the
server issues (a cursor, a signature, an OAuth ticket) or a rule about the data that no
schema states (a bookable slot) decides; see ``ACCEPTANCE_EXEMPT``. The stateful phase
follows the document's OpenAPI links (create, then use the id).

``CORTEX_FUZZ_MAX_EXAMPLES`` (default 20) and ``CORTEX_FUZZ_SEED`` (a failure prints its
seed) change the run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter, defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from cortex_dev.fakes.stripe import FakeStripe
from tests.e2e.harness import (
    OFFICE_HOURS,
    System,
    SystemOptions,
    bearer,
    cli_tenant,
    connect_caldav,
    cortex_cli,
    put_settings,
    radicale_calendar,
    stripe_environ,
)

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = int(os.environ.get("CORTEX_FUZZ_MAX_EXAMPLES", "20"))
SEED = os.environ.get("CORTEX_FUZZ_SEED")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
    "ignored_auth",
)
# 400 codes of values only the server issues: a generated one is refused, as it must be
SERVER_ISSUED = {"invalid_cursor", "invalid_ticket", "invalid_signature", "invalid_state"}
# operations whose valid-looking requests are refused by rules the schema cannot state
ACCEPTANCE_EXEMPT = {
    # a bookable slot: inside working hours, after the notice, within the advance, of an
    # allowed length, end after start; availability says which (GET .../availability)
    "POST /public/{slug}/book": "the slot must be one availability offers",
    # a real CalDAV server: its name must resolve to an address the SSRF vetting allows,
    # and it must accept the username and password
    "POST /api/v1/calendars/caldav": "the server must exist, be allowed and accept the login",
    # a condition value or type changed alone must fit the other, as the policy stores it
    "PUT /api/v1/policies/{policy_id}": "the value must fit the policy's condition type",
    # intervals of HH:MM the schema states; that none is empty or overlaps another, it cannot
    "PUT /api/v1/settings/working-hours": "the week's intervals must not overlap",
    # date, or from and to at most 31 dates apart: which query parameters go together, and
    # the range's length, no schema of separate parameters states
    "GET /public/{slug}/availability": "date, or from and to (at most 31 dates)",
    "GET /api/v1/availability": "date, or from and to (at most 31 dates)",
}
# Not enabled: allow_header_conformance (a 405 on /api/v1/calendars/caldav rightly allows
# DELETE, which /api/v1/calendars/{provider} serves there; the check reads only the concrete
# path), positive_data_acceptance (one refusal fails it, and rules about the data refuse
# some schema-valid values with a documented 400: _refused_positive counts instead), negative_data_rejection
# (request models coerce 0/1 and true/false like pydantic does), and the stateful
# use_after_free / ensure_resource_availability (the hook below puts some state back).


@dataclass
class Seeded:
    gateway: str
    slug: str
    email: str
    key: str
    caldav_login: dict[str, str]
    day: date
    key_id: str = ""  # of ``key``
    ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.key)


@pytest.fixture(scope="module")
def system_options(stripe_api: tuple[FakeStripe, str]) -> SystemOptions:
    """The whole system (one gateway), Radicale as a CalDAV server and the Stripe fake
    (checkout and portal answer as with Stripe configured)."""
    _, stripe_url = stripe_api
    return SystemOptions(
        environ={"CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS": "3600", **stripe_environ(stripe_url)}
    )


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def seed(system: System) -> Seeded:
    """A tenant with a public page, a calendar, callers, policies, a spare key, bookings."""
    gateway = system.gateway
    slug = f"fuzz-{uuid.uuid4().hex[:8]}"
    email = f"{slug}@example.com"
    tenant = cli_tenant(system, email, slug)
    key = tenant.key
    # a plan without a daily call limit: thousands of generated calls stay under test, not 429
    planned = cortex_cli(system, "plan", "set", tenant.tenant_id, "scale")
    assert planned.returncode == 0, planned.stderr
    user, password = slug, uuid.uuid4().hex
    radicale_calendar(system, user, password)
    data = Seeded(
        gateway=gateway,
        slug=slug,
        email=email,
        key=key,
        caldav_login={"server_url": system.radicale.url, "username": user, "password": password},
        day=(datetime.now(UTC) + timedelta(days=4)).date(),
    )
    put_settings(system, key, timezone="UTC", hours=OFFICE_HOURS)
    connection = connect_caldav(system, key, user, password)
    with httpx.Client(base_url=gateway, headers=data.auth, timeout=30) as client:
        calendars = [c["id"] for c in connection["calendars"]]
        callers = [
            _ok(client.post("/api/v1/callers", json={"email": f"c{i}@example.org"}), 201)["id"]
            for i in range(2)
        ]
        policy = {"name": "p", "condition_type": "caller_domain", "condition_value": "example.net",
                  "action": "require_confirmation"}  # fmt: skip
        policies = [_ok(client.post("/api/v1/policies", json=policy), 201)["id"] for _ in range(2)]
        (own,) = _ok(client.get("/api/v1/keys"))["keys"]
        data.key_id = own["id"]
        spare_key = _ok(client.post("/api/v1/keys", json={"name": "spare"}), 201)["id"]
        # a billing account (Stripe customer), so that the portal has something to open
        _ok(client.post("/api/v1/billing/checkout", json={"plan_tier": "pro"}))
        # bookings: the page answers once booking has heard about the settings (events)
        for _ in range(100):
            page = client.get(f"/public/{slug}/availability", params={"date": data.day.isoformat()})
            if page.status_code == 200 and page.json()["slots"]:
                break
            time.sleep(0.1)
        bookings = []
        for hour in (9, 10, 11):
            start = datetime(data.day.year, data.day.month, data.day.day, hour, tzinfo=UTC)
            if hour == 11:  # one pending booking, to confirm or decline
                rules = {"confirm_before_booking": True}
                _ok(client.put("/api/v1/settings/booking-rules", json=rules))
                time.sleep(0.5)  # booking learns the rule through an event
            booked = client.post(
                f"/public/{slug}/book",
                json={"title": "Seed", "start": start.isoformat(),
                      "end": (start + timedelta(minutes=30)).isoformat(),
                      "attendee_email": "guest@example.org"},
            )  # fmt: skip
            assert booked.status_code in (201, 202), booked.text
            bookings.append(booked.json()["booking_id"])
    data.ids = {
        "calendar": calendars,
        "caller": callers,
        "policy": policies,
        "key": [spare_key],
        "booking": bookings,
    }
    return data


@pytest.fixture(scope="module")
def seeded(system: System) -> Seeded:
    return seed(system)


def fuzz_config(seeded: Seeded) -> SchemathesisConfig:
    later = (seeded.day + timedelta(days=1)).isoformat()
    return SchemathesisConfig.from_dict(
        {
            **({"seed": int(SEED)} if SEED else {}),
            "headers": {"Authorization": f"Bearer {seeded.key}"},
            "request-timeout": 30,
            "workers": 1,
            "generation": {"max-examples": MAX_EXAMPLES, "no-shrink": True, "database": "none"},
            "suppress-health-check": ["all"],
            "checks": {"enabled": False, **{check: {"enabled": True} for check in CHECKS}},
            # the coverage phase would send each of the ~600 zone names the schema lists
            "operations": [
                {
                    "include-path": [
                        "/api/v1/settings/timezone",
                        "/public/{slug}/availability",
                        "/api/v1/availability",
                    ],
                    "phases": {"coverage": {"enabled": False}},
                }
            ],
            # ids of seeded data, mixed with generated values
            "dictionaries": {
                "slug": {"values": [seeded.slug]},
                "identity": {"values": [seeded.email]},
                "day": {"values": [seeded.day.isoformat(), later]},
                "calendar": {"values": seeded.ids["calendar"]},
                "caller": {"values": seeded.ids["caller"]},
                "policy": {"values": seeded.ids["policy"]},
                "key": {"values": seeded.ids["key"]},
                "booking": {"values": seeded.ids["booking"]},
                "provider": {"values": ["google", "outlook"]},
            },
            "parameters": {
                "path.slug": {"dictionary": "slug", "probability": 0.7},
                "query.identity": {"dictionary": "identity", "probability": 0.5},
                "query.date": {"dictionary": "day", "probability": 0.5},
                "path.calendar_id": {"dictionary": "calendar", "probability": 0.6},
                "path.caller_id": {"dictionary": "caller", "probability": 0.6},
                "path.policy_id": {"dictionary": "policy", "probability": 0.6},
                "path.key_id": {"dictionary": "key", "probability": 0.5},
                "path.booking_id": {"dictionary": "booking", "probability": 0.6},
                "path.provider": {"dictionary": "provider", "probability": 0.6},
            },
        }
    )


def _restore(seeded: Seeded, method: str, path: str, status: int) -> None:
    """Put back what a successful call changed that other operations rely on."""
    if status >= 300:
        return
    with httpx.Client(base_url=seeded.gateway, headers=seeded.auth, timeout=30) as client:
        if path == "/api/v1/settings/slug":
            _ok(client.put(path, json={"slug": seeded.slug}))
        elif path == "/api/v1/settings/open-scheduling":
            _ok(client.put(path, json={"enabled": True}))
        elif method == "DELETE" and path == "/api/v1/calendars/{provider}":
            client.post("/api/v1/calendars/caldav", json=seeded.caldav_login)


def _describe(event: events.ScenarioFinished) -> list[str]:
    found = []
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.status is not Status.SUCCESS and check.failure_info is not None:
                failure = check.failure_info.failure
                found.append(
                    f"[{event.phase.value}] {event.label}: {check.name}: {failure.title}\n"
                    f"{failure.message}\n{check.failure_info.code_sample}"
                )
    return found


def _refused_positive(positive: dict[str, list[tuple[int, str]]]) -> list[str]:
    """What the schema allows the API accepts: no positive request is refused by the
    gateway's validation, and most are not refused at all (see the module's docstring)."""
    found = []
    for label, answers in sorted(positive.items()):
        statuses = Counter(f"{status} {code}".strip() for status, code in answers)
        print(f"positive {label}: {dict(sorted(statuses.items()))}")  # -s shows the table
        invalid = sum(code == "invalid_request" for _, code in answers)
        if invalid:
            found.append(
                f"{label}: {invalid} of {len(answers)} schema-valid requests refused "
                "by the gateway's validation (the schema allows what validation refuses)"
            )
        counted = [(status, code) for status, code in answers if code not in SERVER_ISSUED]
        refused = sum(status == 400 for status, _ in counted)
        if label not in ACCEPTANCE_EXEMPT and counted and 2 * refused > len(counted):
            codes = sorted({code for status, code in counted if status == 400})
            found.append(
                f"{label}: {refused} of {len(counted)} schema-valid requests refused "
                f"with 400 ({', '.join(codes)}): the schema is looser than the API"
            )
    return found  # fmt: skip


def test_every_operation_conforms(seeded: Seeded) -> None:
    print(f"{time.monotonic():.1f} seeded")
    schema = schemathesis.openapi.from_url(
        f"{seeded.gateway}/openapi.json", config=fuzz_config(seeded)
    )

    def keep_own_key(context: Any, case: Any, kwargs: Any) -> None:
        if case.path == "/api/v1/keys/{key_id}" and case.path_parameters.get("key_id") == (
            seeded.key_id
        ):
            case.path_parameters["key_id"] = seeded.ids["key"][0]

    positive: dict[str, list[tuple[int, str]]] = defaultdict(list)
    stateful: Counter[str] = Counter()

    @schema.hook("after_call")
    def restore(context: Any, case: Any, response: Any) -> None:
        _restore(seeded, case.method.upper(), case.path, response.status_code)
        meta = case.meta
        if meta is not None and meta.phase.name == "stateful":
            stateful[f"{case.method.upper()} {case.path}"] += 1
        if meta is not None and meta.generation.mode.is_positive:
            code = ""
            if response.status_code == 400:
                with suppress(ValueError):
                    code = str(response.json().get("code", ""))
            positive[f"{case.method.upper()} {case.path}"].append((response.status_code, code))

    problems: list[str] = []
    tested: set[str] = set()
    # before_call hooks exist only in the global scope: registered for this run only
    schemathesis.hook("before_call")(keep_own_key)
    try:
        run = []
        for event in schemathesis.engine.from_schema(schema).execute():
            run.append(event)
            if isinstance(event, events.PhaseStarted | events.PhaseFinished):
                print(f"{time.monotonic():.1f} {type(event).__name__} {event.phase.name}")
    finally:
        schemathesis.hooks.GLOBAL_HOOK_DISPATCHER.unregister(keep_own_key)
    for event in run:
        if isinstance(event, events.ScenarioFinished):
            if event.label and event.status is not Status.SKIP:
                tested.add(event.label)
            if event.status in (Status.FAILURE, Status.ERROR):
                problems.extend(_describe(event) or [f"{event.label}: {event.status.value}"])
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: error {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
    print(f"stateful calls: {dict(stateful)}")
    problems.extend(_refused_positive(positive))
    unique = list(dict.fromkeys(problems))  # the same finding recurs across phases
    assert not unique, (
        f"{len(unique)} problems (CORTEX_FUZZ_SEED={schema.config.seed} reproduces the run):\n\n"
        + "\n\n".join(unique)
    )
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
    }
    assert operations <= tested, f"never tested: {sorted(operations - tested)}"
