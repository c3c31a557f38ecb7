"""Identity and access end to end: the whole system as processes, behind two gateways.

One system (NATS, PostgreSQL, every service, two gateway replicas) is started for the
module; every test makes its own tenants with unique e-mails and slugs. Clerk webhooks are
signed with the real ``svix`` library, tenants come from the real ``cortex tenant create``
command or identity's own request/reply API, and identity's database is read directly.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
import string
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from contracts import formats
from contracts import identity as msg
from tests.e2e import harness
from tests.e2e.harness import (
    KEY_PATTERN,
    System,
    SystemOptions,
    bearer,
    clerk_event,
    clerk_user,
    cli_tenant,
    new_user_id,
    rpc_tenant,
    svix_headers,
)

pytestmark = pytest.mark.e2e

MISSING_KEY = {
    "error": "Missing API key: send 'Authorization: Bearer sk_live_...'.",
    "code": "unauthorized",
}
MALFORMED_KEY = {"error": "Malformed API key.", "code": "unauthorized"}
UNKNOWN_KEY = {"error": "Unknown or revoked API key.", "code": "unauthorized"}
INVALID_SIGNATURE = {
    "error": "The webhook signature is invalid or its timestamp is more than 5 minutes off.",
    "code": "invalid_signature",
}
IDENTITY_NOT_FOUND = {
    "error": "No public scheduling page for that identity.",
    "code": "identity_not_found",
}
KEY_NOT_FOUND = {"error": "No such API key.", "code": "key_not_found"}
SLUG_FORMAT = {
    "error": "A slug is 3 to 63 characters of lowercase letters, digits and single hyphens, "
    "starting and ending with a letter or digit.",
    "code": "invalid_slug",
}
INVALID_JSON = {"error": "The request body is not valid JSON.", "code": "invalid_request"}
INVALID_CURSOR = {"error": "The cursor is not valid.", "code": "invalid_cursor"}


# --- the system ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        replicas={"gateway": 2}, environ={"CORTEX_GATEWAY_KEY_USAGE_FLUSH_SECONDS": "0.5"}
    )


# --- helpers -----------------------------------------------------------------------------


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def unique_email(label: str) -> str:
    return f"{unique(label)}@example.com"


def secret_of(key: str) -> str:
    return key.split("_", 3)[3]


def prefix_of(key: str) -> str:
    return key.split("_", 3)[2]


# identity's promises are "within seconds": 5 s unless a check says otherwise
eventually = functools.partial(harness.eventually, timeout=5.0, every=0.05)


def assert_error(response: httpx.Response, status: int, body: dict[str, str]) -> None:
    assert (response.status_code, response.json()) == (status, body), response.text
    assert response.headers["content-type"] == "application/json"


def assert_invalid_request(response: httpx.Response, *fields: str) -> None:
    """A request the gateway's validation refused: 400 ``invalid_request`` naming the fields."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error", "code"} and body["code"] == "invalid_request", body
    assert body["error"].startswith("Invalid request: "), body
    for field in fields:
        assert field in body["error"], body


def create_key(gw: httpx.Client, key: str, name: str) -> dict[str, Any]:
    response = gw.post("/api/v1/keys", json={"name": name}, headers=bearer(key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert set(created) == {"id", "name", "prefix", "created_at", "last_used_at", "key"}
    assert KEY_PATTERN.match(created["key"]) and prefix_of(created["key"]) == created["prefix"]
    return created


def revoke_key(gw: httpx.Client, key: str, key_id: str) -> None:
    response = gw.delete(f"/api/v1/keys/{key_id}", headers=bearer(key))
    assert (response.status_code, response.json()) == (200, {"id": key_id, "revoked": True})


def activity(gw: httpx.Client, key: str, **params: Any) -> dict[str, Any]:
    response = gw.get("/api/v1/activity", params={"limit": 200, **params}, headers=bearer(key))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


# --- Clerk webhooks ------------------------------------------------------------------------


def post_webhook(gw: httpx.Client, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return gw.post("/api/v1/webhooks/clerk", content=body, headers=headers)


def clerk_tenants(system: System, user_id: str) -> list[asyncpg.Record]:
    return system.rows("identity", "SELECT * FROM tenants WHERE external_id = $1", user_id)


def test_clerk_user_created_makes_exactly_one_tenant_and_a_resend_is_a_duplicate(
    system: System,
) -> None:
    user_id, email = new_user_id(), unique_email("clerk-ada")
    body = clerk_event("user.created", clerk_user(user_id, email))
    headers = svix_headers(system.clerk_secret, body)

    first = post_webhook(system.gw0, body, headers)
    assert (first.status_code, first.json()) == (
        200,
        {"status": "processed", "event_type": "user.created"},
    )
    [row] = clerk_tenants(system, user_id)
    assert (row["email"], row["display_name"], row["user_type"]) == (
        email,
        "Ada Lovelace",
        "individual",
    )
    assert row["deleted_at"] is None and row["slug"] is None and row["open_scheduling"] is False

    # Svix retries with the same svix-id, here through the other gateway
    again = post_webhook(system.gw1, body, headers)
    assert (again.status_code, again.json()) == (
        200,
        {"status": "duplicate", "event_type": "user.created"},
    )
    # the same event under a new message id: idempotent by Clerk's user id
    resent = post_webhook(system.gw0, body, svix_headers(system.clerk_secret, body))
    assert resent.status_code == 200, resent.text
    assert [r["id"] for r in clerk_tenants(system, user_id)] == [row["id"]]
    assert (
        len(system.rows("identity", "SELECT id FROM tenants WHERE lower(email) = $1", email)) == 1
    )

    ignored_body = clerk_event("session.created", {"id": "sess_1", "user_id": user_id})
    ignored = post_webhook(
        system.gw1, ignored_body, svix_headers(system.clerk_secret, ignored_body)
    )
    assert (ignored.status_code, ignored.json()) == (
        200,
        {"status": "ignored", "event_type": "session.created"},
    )


def _tampered(secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = svix_headers(secret, body)
    return body.replace(b"@example.com", b"@attacker.example"), headers


def _wrong_secret(secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    return body, svix_headers(other, body)


def _six_minutes_old(secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, svix_headers(secret, body, at=datetime.now(UTC) - timedelta(minutes=6))


def _six_minutes_ahead(secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, svix_headers(secret, body, at=datetime.now(UTC) + timedelta(minutes=6))


def _signature_of_another_id(secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = svix_headers(secret, body)
    headers["svix-id"] = f"msg_{uuid.uuid4().hex}"
    return body, headers


def _timestamp_not_a_number(secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = svix_headers(secret, body)
    headers["svix-timestamp"] = "yesterday"
    return body, headers


def _signature_without_version(secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = svix_headers(secret, body)
    headers["svix-signature"] = headers["svix-signature"].split(",", 1)[1]
    return body, headers


def _signature_not_base64(secret: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = svix_headers(secret, body)
    headers["svix-signature"] = "v1,abc"
    return body, headers


@pytest.mark.parametrize(
    "forge",
    [
        _tampered,
        _wrong_secret,
        _six_minutes_old,
        _six_minutes_ahead,
        _signature_of_another_id,
        _timestamp_not_a_number,
        _signature_without_version,
        _signature_not_base64,
    ],
)
def test_clerk_webhook_with_a_bad_signature_is_refused_and_changes_nothing(
    system: System, forge: Callable[[str, bytes], tuple[bytes, dict[str, str]]]
) -> None:
    user_id, email = new_user_id(), unique_email("clerk-forged")
    body, headers = forge(
        system.clerk_secret, clerk_event("user.created", clerk_user(user_id, email))
    )
    response = post_webhook(system.gw0, body, headers)
    assert_error(response, 400, INVALID_SIGNATURE)
    assert clerk_tenants(system, user_id) == []


@pytest.mark.parametrize("header", ["svix-id", "svix-timestamp", "svix-signature"])
def test_clerk_webhook_without_a_svix_header_is_refused(system: System, header: str) -> None:
    user_id = new_user_id()
    body = clerk_event("user.created", clerk_user(user_id, unique_email("clerk-missing")))
    headers = svix_headers(system.clerk_secret, body)
    del headers[header]
    response = post_webhook(system.gw1, body, headers)
    assert_error(response, 400, {"error": f"Missing header {header}.", "code": "invalid_signature"})
    assert clerk_tenants(system, user_id) == []


def test_clerk_user_created_for_an_email_already_taken_is_a_clean_conflict(system: System) -> None:
    """A Clerk sign-up with the e-mail of a live tenant: a 409 JSON error, not a crash."""
    existing = rpc_tenant(system, unique_email("taken"))
    user_id = new_user_id()
    body = clerk_event("user.created", clerk_user(user_id, existing.email.upper()))
    response = post_webhook(system.gw0, body, svix_headers(system.clerk_secret, body))
    assert_error(
        response, 409, {"error": "A tenant with that e-mail already exists.", "code": "email_taken"}
    )
    assert clerk_tenants(system, user_id) == []


def test_clerk_user_updated_renames_and_user_deleted_removes_the_tenant(system: System) -> None:
    user_id, email = new_user_id(), unique_email("clerk-grace")
    body = clerk_event("user.created", clerk_user(user_id, email, "Grace", "Hopper"))
    assert (
        post_webhook(system.gw0, body, svix_headers(system.clerk_secret, body)).status_code == 200
    )
    [row] = clerk_tenants(system, user_id)
    tenant_id = row["id"]
    assert row["display_name"] == "Grace Hopper"

    # Clerk tenants have no key or slug yet: give them some through identity's own API
    slug = unique("grace")
    system.bus.call(
        msg.UPDATE_SETTINGS,
        msg.UpdateSettings(tenant_id=tenant_id, slug=slug, open_scheduling=True),
    )
    key = system.bus.call(
        msg.CREATE_API_KEY, msg.CreateApiKey(tenant_id=tenant_id, name="agent")
    ).key
    for gw in system.clients:  # warms both gateways' key caches
        assert gw.get("/api/v1/settings", headers=bearer(key)).json()["tenant_id"] == tenant_id
    assert system.gw0.get("/resolve", params={"identity": email}).status_code == 200

    body = clerk_event("user.updated", clerk_user(user_id, email, "Grace Brewster", "Hopper"))
    updated = post_webhook(system.gw1, body, svix_headers(system.clerk_secret, body))
    assert (updated.status_code, updated.json()) == (
        200,
        {"status": "processed", "event_type": "user.updated"},
    )
    [row] = clerk_tenants(system, user_id)
    assert (row["display_name"], row["email"], row["slug"]) == (
        "Grace Brewster Hopper",
        email,
        slug,
    )
    settings = system.gw0.get("/api/v1/settings", headers=bearer(key)).json()
    assert settings["display_name"] == "Grace Brewster Hopper"

    body = clerk_event("user.deleted", {"deleted": True, "id": user_id, "object": "user"})
    deleted = post_webhook(system.gw0, body, svix_headers(system.clerk_secret, body))
    assert (deleted.status_code, deleted.json()) == (
        200,
        {"status": "processed", "event_type": "user.deleted"},
    )
    [row] = clerk_tenants(system, user_id)
    assert row["deleted_at"] is not None
    assert (row["slug"], row["open_scheduling"]) == (None, False)
    assert_error(system.gw1.get("/resolve", params={"identity": email}), 404, IDENTITY_NOT_FOUND)
    [key_row] = system.rows(
        "identity", "SELECT revoked_at FROM api_keys WHERE tenant_id = $1", tenant_id
    )
    assert key_row["revoked_at"] is not None
    for gw in system.clients:  # the cached key stops working everywhere
        eventually(
            lambda gw=gw: gw.get("/api/v1/settings", headers=bearer(key)).status_code == 401,
            f"{gw.base_url} refuses the deleted tenant's key",
        )
    # the slug is free again
    other = rpc_tenant(system, unique_email("slug-heir"))
    taken = system.gw0.put("/api/v1/settings/slug", json={"slug": slug}, headers=bearer(other.key))
    assert taken.status_code == 200 and taken.json()["slug"] == slug


# --- secrets at rest ------------------------------------------------------------------------


def test_database_dump_holds_key_prefixes_but_no_key_or_secret(system: System) -> None:
    tenant = cli_tenant(system, unique_email("dump"))
    second = create_key(system.gw0, tenant.key, "second")
    third = create_key(system.gw1, tenant.key, "third")
    revoke_key(system.gw0, tenant.key, third["id"])
    keys = [tenant.key, second["key"], third["key"]]
    assert len({secret_of(k) for k in keys}) == 3

    dump = system.dump("identity")
    assert b"CREATE TABLE public.api_keys" in dump
    for key in keys:
        secret = secret_of(key)
        raw = base64.urlsafe_b64decode(secret + "=")
        assert key.encode() not in dump
        assert secret.encode() not in dump
        assert raw.hex().encode() not in dump and raw not in dump
        assert prefix_of(key).encode() in dump  # the rows are in the dump


def test_no_key_secret_reaches_any_file_the_system_writes(system: System) -> None:
    tenant = rpc_tenant(system, unique_email("disk"))
    created = create_key(system.gw1, tenant.key, "disk")
    for gw in system.clients:
        for key in (tenant.key, created["key"]):
            assert gw.get("/api/v1/keys", headers=bearer(key)).status_code == 200
    revoke_key(system.gw0, tenant.key, created["id"])
    time.sleep(1.0)  # usage flushed, events relayed and logged
    needles = [n for key in (tenant.key, created["key"]) for n in (key, secret_of(key))]
    found = []
    for path in system.stack.data_dir.rglob("*"):
        try:
            if not path.is_file():
                continue
            data = path.read_bytes()
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            continue
        found += [f"{path}: {needle[:20]}..." for needle in needles if needle.encode() in data]
    assert found == []


# --- revocation --------------------------------------------------------------------------------


def test_a_revoked_key_is_refused_by_every_gateway_within_5_seconds(system: System) -> None:
    tenant = cli_tenant(system, unique_email("revoke"), slug=unique("revoke"))
    doomed = create_key(system.gw0, tenant.key, "doomed")
    for gw in system.clients:  # both caches now hold the key
        response = gw.get("/api/v1/settings", headers=bearer(doomed["key"]))
        assert response.status_code == 200 and response.json()["tenant_id"] == tenant.tenant_id

    revoked_at = time.monotonic()
    revoke_key(system.gw0, tenant.key, doomed["id"])
    refused: dict[int, tuple[float, httpx.Response]] = {}
    while len(refused) < 2 and time.monotonic() - revoked_at < 10:
        for i, gw in enumerate(system.clients):
            if i not in refused:
                response = gw.get("/api/v1/settings", headers=bearer(doomed["key"]))
                if response.status_code == 401:
                    refused[i] = (time.monotonic() - revoked_at, response)
                else:
                    assert response.status_code == 200, response.text
        time.sleep(0.02)
    assert sorted(refused) == [0, 1], f"still accepted by gateway(s) {set(range(2)) - set(refused)}"
    for i, (elapsed, response) in refused.items():
        assert elapsed < 5.0, f"gateway {i} accepted the revoked key for {elapsed:.2f}s"
        assert_error(response, 401, UNKNOWN_KEY)
        assert response.headers["www-authenticate"] == "Bearer"
    time.sleep(0.5)
    for gw in system.clients:  # and it stays refused
        assert gw.get("/api/v1/keys", headers=bearer(doomed["key"])).status_code == 401
        assert gw.get("/api/v1/settings", headers=bearer(tenant.key)).status_code == 200
    listed = system.gw1.get("/api/v1/keys", headers=bearer(tenant.key)).json()["keys"]
    assert doomed["id"] not in [k["id"] for k in listed]
    again = system.gw1.delete(f"/api/v1/keys/{doomed['id']}", headers=bearer(tenant.key))
    assert_error(again, 404, KEY_NOT_FOUND)


# --- every authenticated route ----------------------------------------------------------------


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def sample(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A plausible value of ``schema``: its example, its default, or one built from its type."""
    schema = _resolve(schema, spec)
    if schema.get("examples"):
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    if schema.get("default") is not None:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(combinator, []) if o.get("type") != "null"]
        if options:
            return sample(options[0], spec)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: sample(s, spec) for name, s in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(schema.get("items", {}), spec)]
    if kind == "string":
        return "sample-value"[: schema.get("maxLength", 12)].ljust(schema.get("minLength", 1), "x")
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "number":
        return schema.get("minimum", 1.0)
    if kind == "boolean":
        return True
    return None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    params: tuple[str, ...]
    body: Any

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], self.path)

    def send(
        self,
        gw: httpx.Client,
        values: dict[str, str],
        headers: dict[str, str],
        query: dict[str, str] | None = None,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": headers, "params": query or {}}
        if self.body is not None:
            kwargs["json"] = self.body
        return gw.request(self.method, self.url(values), **kwargs)


PUBLIC_API_OPERATIONS = {
    # the link a connect request answers, opened in the owner's browser: it carries no API
    # key, a ticket the gateway signed names the flow (gateway/oauth_binding.py)
    "GET /api/v1/calendars/{provider}/authorize",
    # where an OAuth provider sends the user's browser back: it carries no API key, the
    # ``state`` names the tenant (calendars verifies it) and the browser must hold the
    # cookie the gateway bound to that state
    "GET /api/v1/calendars/{provider}/callback",
    # TOON conversion is a public utility (rate-limited per IP like availability)
    "POST /api/v1/toon/encode",
}
"""The only operations under /api/v1/ besides the webhooks that take no API key; adding one
is a deliberate decision recorded here."""


def authenticated_operations(system: System) -> list[Operation]:
    """Every operation under /api/v1/ but the public ones, as the gateway's OpenAPI lists them."""
    spec = system.gw0.get("/openapi.json").json()
    found = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/webhooks/"):
            continue
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            if f"{method.upper()} {path}" in PUBLIC_API_OPERATIONS:
                continue
            assert "401" in op.get("responses", {}), f"{method.upper()} {path} documents no 401"
            body = None
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = sample(content["application/json"]["schema"], spec)
            params = tuple(re.findall(r"\{([^}]+)\}", path))
            found.append(Operation(method.upper(), path, params, body))
    return found


def random_well_formed_key() -> str:
    prefix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"sk_live_{prefix}_{secret}"


def test_every_authenticated_route_refuses_missing_malformed_unknown_and_revoked_keys(
    system: System,
) -> None:
    operations = authenticated_operations(system)
    assert len(operations) >= 10, operations
    assert {"GET /api/v1/settings", "DELETE /api/v1/keys/{key_id}", "GET /api/v1/activity"} <= {
        f"{op.method} {op.path}" for op in operations
    }
    tenant = rpc_tenant(system, unique_email("walker"))
    revoked = create_key(system.gw0, tenant.key, "revoked")
    revoke_key(system.gw0, tenant.key, revoked["id"])
    well_formed = random_well_formed_key()
    assert KEY_PATTERN.match(well_formed)
    credentials: list[tuple[str, dict[str, str], dict[str, str]]] = [
        ("no header", {}, MISSING_KEY),
        ("empty bearer", {"Authorization": "Bearer"}, MISSING_KEY),
        ("basic scheme", {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}, MISSING_KEY),
        ("key without scheme", {"Authorization": tenant.key}, MISSING_KEY),
        ("malformed", {"Authorization": "Bearer sk_live_abc"}, MALFORMED_KEY),
        (
            "test-mode key",
            {"Authorization": "Bearer " + well_formed.replace("live", "test")},
            MALFORMED_KEY,
        ),
        ("unknown", bearer(well_formed), UNKNOWN_KEY),
        (
            "valid prefix, wrong secret",
            bearer(tenant.key[:-2] + ("AA" if tenant.key[-2:] != "AA" else "BB")),
            UNKNOWN_KEY,
        ),
        ("revoked", bearer(revoked["key"]), UNKNOWN_KEY),
    ]
    # well-formed values (a provider path matches only a provider's name)
    dummy = {
        name: "google" if name == "provider" else made_up_id(name)
        for op in operations
        for name in op.params
    }
    failures = []
    for op in operations:
        for i, (label, headers, expected) in enumerate(credentials):
            gw = system.clients[(i + len(label)) % 2]
            response = op.send(gw, dummy, headers)
            try:
                assert_error(response, 401, expected)
                assert response.headers.get("www-authenticate") == "Bearer"
            except (AssertionError, ValueError) as exc:
                failures.append(f"{op.method} {op.path} with {label}: {exc}")
    assert failures == []
    # the reads, with a valid key, are answered: the walk reaches real routes
    reads = [op for op in operations if op.method == "GET" and not op.params]
    assert len(reads) >= 3
    # a read whose query names what to read (one of two ways, so no parameter is required)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    queries = {"GET /api/v1/availability": {"date": tomorrow}}
    for op in reads:
        query = queries.get(f"{op.method} {op.path}")
        response = op.send(system.gw1, {}, bearer(tenant.key), query)
        assert response.status_code == 200, f"{op.method} {op.path}: {response.text}"


# --- tenants cannot see each other ------------------------------------------------------------


_ID_PREFIX = {
    "booking_id": formats.IdPrefix.BOOKING,
    "caller_id": formats.IdPrefix.CALLER,
    "policy_id": formats.IdPrefix.POLICY,
    "key_id": formats.IdPrefix.API_KEY,
    "calendar_id": formats.IdPrefix.CALENDAR,
}


def made_up_id(param: str) -> str:
    return f"{_ID_PREFIX[param].value}_{'0' * formats.ID_HEX_DIGITS}"


def another_id(value: str) -> str:
    """Another id of the same kind and shape."""
    return value[:-1] + ("1" if value[-1] != "1" else "2")


def test_a_tenant_cannot_reach_another_tenants_objects(system: System) -> None:
    a = rpc_tenant(system, unique_email("tenant-a"))
    b = rpc_tenant(system, unique_email("tenant-b"))
    a_key = create_key(system.gw0, a.key, "a-second")
    a_key_ids = {
        k["id"] for k in system.gw0.get("/api/v1/keys", headers=bearer(a.key)).json()["keys"]
    }
    assert a_key["id"] in a_key_ids and len(a_key_ids) == 2

    # every id-taking route, with A's object ids in its path, as B
    a_objects = {"key_id": a_key["id"]}
    id_routes = [
        op
        for op in authenticated_operations(system)
        if any(p == "id" or p.endswith("_id") for p in op.params)
    ]
    assert "DELETE /api/v1/keys/{key_id}" in [f"{op.method} {op.path}" for op in id_routes]
    unchecked = []
    for op in id_routes:
        if any(p not in a_objects for p in op.params):
            # an object this module cannot make (e.g. a calendar): at least an id B does not
            # own is not found; the owning service's tests make real objects
            unchecked.append(f"{op.method} {op.path}")
        # made-up ids have the shape of real ones (the gateway refuses others with a 400)
        values = {p: a_objects.get(p, made_up_id(p)) for p in op.params}
        for gw in system.clients:
            response = op.send(gw, values, bearer(b.key))
            assert response.status_code == 404, f"{op.method} {op.path}: {response.text}"
            assert response.json()["code"].endswith("_not_found"), response.text
            # indistinguishable from an id that does not exist at all
            missing = op.send(gw, {p: another_id(v) for p, v in values.items()}, bearer(b.key))
            assert (missing.status_code, missing.content) == (404, response.content)
    if unchecked:
        warnings.warn(
            f"cross-tenant access checked with made-up ids only: {unchecked}", stacklevel=1
        )
    assert_error(
        system.gw0.delete(f"/api/v1/keys/{a_key['id']}", headers=bearer(b.key)), 404, KEY_NOT_FOUND
    )

    # A's keys are intact and still work
    for gw in system.clients:
        for key in (a.key, a_key["key"]):
            response = gw.get("/api/v1/settings", headers=bearer(key))
            assert response.status_code == 200 and response.json()["tenant_id"] == a.tenant_id
    listed = system.gw1.get("/api/v1/keys", headers=bearer(a.key)).json()["keys"]
    assert {k["id"] for k in listed} == a_key_ids

    # B's lists never show A's keys or activity
    b_keys = system.gw0.get("/api/v1/keys", headers=bearer(b.key)).json()["keys"]
    assert len(b_keys) == 1 and b_keys[0]["prefix"] == prefix_of(b.key)
    assert not {k["id"] for k in b_keys} & a_key_ids
    a_ids = {a.tenant_id, *a_key_ids}
    eventually(
        lambda: (
            {v for item in activity(system.gw0, a.key)["items"] for v in item["ids"].values()}
            >= a_ids
        ),
        "A's activity lists its tenant and both keys",
    )
    eventually(lambda: len(activity(system.gw1, b.key)["items"]) >= 2, "B's own activity")
    for gw in system.clients:
        b_items = activity(gw, b.key)["items"]
        b_values = {v for item in b_items for v in item["ids"].values()}
        assert not b_values & a_ids, b_items
        assert not [
            i for i in b_items if a.email in i["summary"] or a_key["prefix"] in i["summary"]
        ]
        a_item_ids = {item["id"] for item in activity(gw, a.key)["items"]}
        assert not a_item_ids & {item["id"] for item in b_items}


# --- identity resolution --------------------------------------------------------------------------


def test_resolution_answers_only_for_open_scheduling_with_a_slug(system: System) -> None:
    base = system.stack.gateway_urls
    closed = rpc_tenant(
        system, f"Grace.{uuid.uuid4().hex[:10]}@Example.COM", unique("closed"), "Grace Hopper"
    )
    no_slug = rpc_tenant(system, unique_email("noslug"), None, "No Slug")
    opened = system.gw0.put(
        "/api/v1/settings/open-scheduling", json={"enabled": True}, headers=bearer(no_slug.key)
    )
    assert opened.status_code == 200
    assert (opened.json()["open_scheduling"], opened.json()["slug"]) == (True, None)

    def resolve(gw: httpx.Client, identity: str) -> httpx.Response:
        return gw.get("/resolve", params={"identity": identity})

    asked = [unique_email("nobody"), closed.email, closed.email.lower(), no_slug.email]
    refused = [resolve(gw, who) for who in asked for gw in system.clients]
    for response in refused:
        assert_error(response, 404, IDENTITY_NOT_FOUND)
    assert len({(r.status_code, r.content) for r in refused}) == 1, [r.content for r in refused]

    turned_on = system.gw1.put(
        "/api/v1/settings/open-scheduling", json={"enabled": True}, headers=bearer(closed.key)
    )
    assert turned_on.status_code == 200 and turned_on.json()["open_scheduling"] is True
    for i, gw in enumerate(system.clients):
        for who in (closed.email, closed.email.lower(), closed.email.upper(), f"  {closed.email} "):
            response = resolve(gw, who)
            assert response.status_code == 200, response.text
            page = f"{base[i]}/public/{closed.slug}"
            assert response.json() == {
                "identity": who.strip(),
                "slug": closed.slug,
                "display_name": "Grace Hopper",
                "availability_url": f"{page}/availability",
                "booking_url": f"{page}/book",
            }

    turned_off = system.gw0.put(
        "/api/v1/settings/open-scheduling", json={"enabled": False}, headers=bearer(closed.key)
    )
    assert turned_off.status_code == 200
    again = resolve(system.gw1, closed.email)
    assert (again.status_code, again.content) == (refused[0].status_code, refused[0].content)


# --- last use of keys ---------------------------------------------------------------------------


def test_last_used_at_is_recorded_within_seconds(system: System) -> None:
    tenant = rpc_tenant(system, unique_email("usage"))
    probe = create_key(system.gw0, tenant.key, "usage probe")
    assert probe["last_used_at"] is None

    def probe_listed() -> dict[str, Any]:
        keys = system.gw0.get("/api/v1/keys", headers=bearer(tenant.key)).json()["keys"]
        return next(k for k in keys if k["id"] == probe["id"])

    time.sleep(0.7)  # more than one flush period: an unused key stays unused
    assert probe_listed()["last_used_at"] is None
    before = datetime.now(UTC)
    assert system.gw1.get("/api/v1/settings", headers=bearer(probe["key"])).status_code == 200
    listed = eventually(
        lambda: (k := probe_listed())["last_used_at"] and k, "last_used_at of the used key"
    )
    used_at = datetime.fromisoformat(listed["last_used_at"])
    assert before - timedelta(seconds=2) <= used_at <= datetime.now(UTC) + timedelta(seconds=2)


# --- settings through HTTP ----------------------------------------------------------------------


class SettingsLog:
    """The settings changes a tenant made, to find in its activity feed, newest first."""

    def __init__(self, system: System, key: str) -> None:
        self.system, self.key = system, key
        self.expected: list[str] = []

    def feed(self) -> list[str]:
        items = activity(self.system.gw1, self.key)["items"]
        return [i["summary"] for i in items if i["type"] == "settings.updated"]

    def changed(self, *fields: str) -> None:
        self.expected.append(f"Settings changed: {', '.join(sorted(fields))}")
        eventually(
            lambda: self.feed() == self.expected[::-1],
            f"activity shows {self.expected[::-1]}",
        )


def test_slug_validation_and_conflicts(system: System) -> None:
    tenant = rpc_tenant(system, unique_email("slugs"))
    rival = rpc_tenant(system, unique_email("rival"), unique("rival"))
    log = SettingsLog(system, tenant.key)

    def put(slug: str) -> httpx.Response:
        return system.gw0.put(
            "/api/v1/settings/slug", json={"slug": slug}, headers=bearer(tenant.key)
        )

    mine = unique("mine")
    response = put(mine)
    assert response.status_code == 200 and response.json()["slug"] == mine
    log.changed("slug")
    for bad in (
        "My-Page",
        "UPPER",
        "ab",
        "-leading",
        "trailing-",
        "double--hyphen",
        "a" * 64,
        "under_score",
    ):
        assert_error(put(bad), 400, SLUG_FORMAT)
    assert_error(put("api"), 400, {"error": "The slug 'api' is reserved.", "code": "reserved_slug"})
    taken = {"error": "That slug is already taken.", "code": "slug_taken"}
    assert rival.slug is not None
    assert_error(put(rival.slug), 409, taken)
    assert_error(put(f"  {rival.slug} "), 409, taken)
    assert_error(
        system.gw1.put(
            "/api/v1/settings/slug",
            content=b'{"slug": ',
            headers={**bearer(tenant.key), "content-type": "application/json"},
        ),
        400,
        INVALID_JSON,
    )
    assert_invalid_request(
        system.gw1.put("/api/v1/settings/slug", json={}, headers=bearer(tenant.key)), "slug"
    )
    longest = ("s" + uuid.uuid4().hex * 2)[:63]
    assert put(longest).json()["slug"] == longest
    log.changed("slug")
    assert system.gw1.get("/api/v1/settings", headers=bearer(tenant.key)).json()["slug"] == longest
    assert (
        system.gw1.get("/api/v1/settings", headers=bearer(rival.key)).json()["slug"] == rival.slug
    )
    again = put(longest)  # its own slug is not "taken"
    assert again.status_code == 200 and again.json()["slug"] == longest


def test_booking_rules_are_range_checked_and_partially_updatable(system: System) -> None:
    tenant = rpc_tenant(system, unique_email("rules"))
    log = SettingsLog(system, tenant.key)

    def put(rules: Any) -> httpx.Response:
        return system.gw1.put(
            "/api/v1/settings/booking-rules", json=rules, headers=bearer(tenant.key)
        )

    defaults = system.gw0.get("/api/v1/settings", headers=bearer(tenant.key)).json()
    for field, value in (
        ("max_advance_days", 0),
        ("max_advance_days", 366),
        ("min_notice_hours", 721),
        ("min_notice_hours", -1),
        ("buffer_minutes", 241),
        ("default_duration_minutes", 4),
        ("confirm_before_booking", "maybe"),
    ):
        assert_invalid_request(put({field: value}), field)
    assert_invalid_request(put({"max_advance": 10}), "max_advance")  # unknown field
    assert_invalid_request(put([]))
    after_refusals = system.gw0.get("/api/v1/settings", headers=bearer(tenant.key)).json()
    assert after_refusals == defaults

    full = {
        "max_advance_days": 30,
        "min_notice_hours": 5,
        "confirm_before_booking": True,
        "buffer_minutes": 15,
        "default_duration_minutes": 45,
    }
    response = put(full)
    assert response.status_code == 200 and {k: response.json()[k] for k in full} == full
    log.changed("booking_rules")
    response = put({"min_notice_hours": 720})
    assert response.status_code == 200
    kept = {**full, "min_notice_hours": 720}
    assert {k: response.json()[k] for k in full} == kept
    log.changed("booking_rules")
    boundaries = put({"max_advance_days": 365, "min_notice_hours": 0})
    assert boundaries.status_code == 200
    kept |= {"max_advance_days": 365, "min_notice_hours": 0}
    settings = system.gw0.get("/api/v1/settings", headers=bearer(tenant.key)).json()
    assert {k: settings[k] for k in full} == kept
    log.changed("booking_rules")


def test_user_type_timezone_and_working_hours_are_validated(system: System) -> None:
    tenant = rpc_tenant(system, unique_email("hours"))
    log = SettingsLog(system, tenant.key)
    gw = system.gw0

    def put(what: str, body: Any) -> httpx.Response:
        return gw.put(f"/api/v1/settings/{what}", json=body, headers=bearer(tenant.key))

    assert_error(
        put("user-type", {"user_type": "admin"}),
        400,
        {"error": "user_type must be 'individual' or 'developer'.", "code": "invalid_user_type"},
    )
    developer = put("user-type", {"user_type": "developer"})
    assert developer.status_code == 200 and developer.json()["user_type"] == "developer"
    log.changed("user_type")

    assert_error(
        put("timezone", {"timezone": "Not/AZone"}),
        400,
        {"error": "'Not/AZone' is not an IANA time zone.", "code": "invalid_timezone"},
    )
    new_york = put("timezone", {"timezone": "America/New_York"})
    assert new_york.status_code == 200 and new_york.json()["timezone"] == "America/New_York"
    log.changed("timezone")

    overlapping = {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}
    assert_error(
        put("working-hours", {"working_hours": overlapping}),
        400,
        {"error": "mon 09:00-12:00 overlaps mon 11:00-13:00.", "code": "invalid_working_hours"},
    )
    across_week = {
        "sun": [{"start": "22:00", "end": "02:00"}],
        "mon": [{"start": "01:00", "end": "09:00"}],
    }
    assert_error(
        put("working-hours", {"working_hours": across_week}),
        400,
        {"error": "sun 22:00-02:00 overlaps mon 01:00-09:00.", "code": "invalid_working_hours"},
    )
    assert_invalid_request(
        put("working-hours", {"working_hours": {"mon": [{"start": "25:00", "end": "26:00"}]}}),
        "start",
    )
    night = {
        "mon": [{"start": "09:00", "end": "12:00"}],
        "fri": [{"start": "22:00", "end": "02:00"}],
        "sat": [{"start": "02:00", "end": "06:00"}],
    }
    crossing = put("working-hours", {"working_hours": night})
    assert crossing.status_code == 200, crossing.text
    assert crossing.json()["working_hours"] == night
    log.changed("working_hours")

    assert_error(
        gw.put(
            "/api/v1/settings/timezone",
            content=b'{"timezone": "UTC"',
            headers={**bearer(tenant.key), "content-type": "application/json"},
        ),
        400,
        INVALID_JSON,
    )
    settings = gw.get("/api/v1/settings", headers=bearer(tenant.key)).json()
    assert (settings["user_type"], settings["timezone"], settings["working_hours"]) == (
        "developer",
        "America/New_York",
        night,
    )
    assert log.feed() == log.expected[::-1]  # refused changes left no trace


def test_activity_is_newest_first_and_pages_without_repeats(system: System) -> None:
    tenant = rpc_tenant(system, unique_email("feed"))
    log = SettingsLog(system, tenant.key)
    eventually(lambda: len(activity(system.gw0, tenant.key)["items"]) >= 2, "creation activity")
    for i, zone in enumerate(("Europe/Berlin", "Asia/Tokyo", "America/Chicago")):
        gw = system.clients[i % 2]
        response = gw.put(
            "/api/v1/settings/timezone", json={"timezone": zone}, headers=bearer(tenant.key)
        )
        assert response.status_code == 200
        log.changed("timezone")
    create_key(system.gw1, tenant.key, "feed key")
    eventually(
        lambda: activity(system.gw0, tenant.key)["items"][0]["type"] == "api_key.created",
        "the new key in the activity",
    )
    response = system.gw0.put(
        "/api/v1/settings/display-name",
        json={"display_name": "Feed Tester"},
        headers=bearer(tenant.key),
    )
    assert response.status_code == 200
    log.changed("display_name")

    def complete() -> dict[str, Any] | None:
        page = activity(system.gw0, tenant.key)
        return page if len(page["items"]) == 7 else None

    full = eventually(complete, "seven activity items")
    items = full["items"]
    assert full["next_cursor"] is None
    assert items[0]["summary"] == "Settings changed: display_name"
    assert sorted(i["type"] for i in items) == sorted(
        ["tenant.created", "api_key.created", "api_key.created"] + ["settings.updated"] * 4
    )
    # the changes made one after the other are newest first
    assert [i["type"] for i in items[:5]] == [
        "settings.updated",
        "api_key.created",
        "settings.updated",
        "settings.updated",
        "settings.updated",
    ]
    times = [datetime.fromisoformat(i["occurred_at"]) for i in items[:5]]
    assert times == sorted(times, reverse=True), "the feed is not newest first"

    walked, cursor, pages = [], None, 0
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = activity(system.clients[pages % 2], tenant.key, **params)
        assert len(page["items"]) == 1
        walked += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages <= len(items)
    assert [i["id"] for i in walked] == [i["id"] for i in items]
    assert len({i["id"] for i in walked}) == len(walked) == pages

    for limit in (0, 201):
        response = system.gw1.get(
            "/api/v1/activity", params={"limit": limit}, headers=bearer(tenant.key)
        )
        assert_invalid_request(response, "limit")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        base64.urlsafe_b64encode(b"b:1").decode().rstrip("="),  # not an activity cursor
        base64.urlsafe_b64encode(b"a:x").decode().rstrip("="),
        base64.urlsafe_b64encode(b"a:99999999999999999999").decode().rstrip("="),  # > int64
    ],
    ids=["garbage", "other-kind", "not-a-number", "beyond-int64"],
)
def test_activity_refuses_an_invalid_cursor(system: System, cursor: str) -> None:
    tenant = rpc_tenant(system, unique_email("cursor"))
    response = system.gw0.get(
        "/api/v1/activity", params={"cursor": cursor}, headers=bearer(tenant.key)
    )
    assert_error(response, 400, INVALID_CURSOR)


def test_activity_of_new_tenants_is_newest_first(system: System) -> None:
    """A tenant's first key is created after the tenant: it is listed above it."""
    tenants = [rpc_tenant(system, unique_email(f"order{i}")) for i in range(12)]
    feeds = {}
    for tenant in tenants:
        feeds[tenant.email] = eventually(
            lambda t=tenant: len(items := activity(system.gw0, t.key)["items"]) == 2 and items,
            "creation activity",
        )
    misordered = {
        email: [(i["type"], i["occurred_at"]) for i in items]
        for email, items in feeds.items()
        if [i["type"] for i in items] != ["api_key.created", "tenant.created"]
    }
    assert misordered == {}, f"{len(misordered)} of {len(tenants)} feeds are not newest first"


def test_key_digest_not_secret_is_what_identity_stores(system: System) -> None:
    tenant = rpc_tenant(system, unique_email("digest"))
    [row] = system.rows(
        "identity",
        "SELECT prefix, secret_hash FROM api_keys WHERE tenant_id = $1",
        tenant.tenant_id,
    )
    assert row["prefix"] == prefix_of(tenant.key)
    assert bytes(row["secret_hash"]) == hashlib.sha256(secret_of(tenant.key).encode()).digest()
