"""The OpenAPI document states what the API enforces, and links the operations that create
an id to those that use it (issue 14, item 18).

Schemathesis over all operations found 24 whose schema-valid requests the API mostly
refused: ids, providers, enums, formats and bounds that validation enforced and the schema
did not state. Here: each statement is in the document, it is the same fact the service
checks (values generated from the schema pass the service's own check functions), and the
links resolve. ``tests/e2e/test_api_fuzz.py`` checks the whole system: requests generated
from the schema are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import formats
from contracts.billing import PlanTier
from contracts.formats import IdPrefix
from contracts.identity import WEEKDAYS, UserType
from contracts.policies import ConditionType, PolicyAction, TrustLevel
from gateway.app import create_app
from gateway.openapi import LINKS
from gateway.routes.manage import TOKEN_PATTERN as MANAGE_TOKEN_PATTERN
from gateway.settings import GatewaySettings


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = create_app(GatewaySettings()).openapi()
    return document


def operation(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    method, path = ref.split(" ", 1)
    found: dict[str, Any] = spec["paths"][path][method.lower()]
    return found


def parameter(spec: dict[str, Any], ref: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in operation(spec, ref).get("parameters", []) if p["name"] == name]
    return found


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def body_property(spec: dict[str, Any], ref: str, name: str) -> dict[str, Any]:
    content = operation(spec, ref)["requestBody"]["content"]["application/json"]["schema"]
    prop: dict[str, Any] = resolve(spec, content)["properties"][name]
    return prop


def string_branch(schema: dict[str, Any]) -> dict[str, Any]:
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            return branch
    raise AssertionError(f"no string in {schema}")


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield f"{method.upper()} {path}", op


# --- path parameters -------------------------------------------------------------------------

ID_PARAMETERS = {
    "booking_id": IdPrefix.BOOKING,
    "caller_id": IdPrefix.CALLER,
    "policy_id": IdPrefix.POLICY,
    "key_id": IdPrefix.API_KEY,
    "calendar_id": IdPrefix.CALENDAR,
}


def test_every_path_parameter_states_its_shape(spec: dict[str, Any]) -> None:
    """An id is ``<prefix>_<20 hex>``, a slug a slug, a provider one of the providers: no
    path parameter is a bare string any more."""
    seen = set()
    for ref, op in operations(spec):
        for param in op.get("parameters", []):
            if param["in"] != "path":
                continue
            schema = resolve(spec, param["schema"])
            name = param["name"]
            seen.add(name)
            if name in ID_PARAMETERS:
                assert schema["pattern"] == formats.id_pattern(ID_PARAMETERS[name]), ref
            elif name == "slug":
                assert schema["pattern"] == formats.PAGE_SLUG_PATTERN, ref
                assert (schema["minLength"], schema["maxLength"]) == (3, 63), ref
            elif name == "token":  # the manage link's token
                assert schema["pattern"] == MANAGE_TOKEN_PATTERN, ref
            elif name == "provider":
                wanted = {"google", "outlook"}
                if ref == "DELETE /api/v1/calendars/{provider}":
                    wanted.add("caldav")
                assert set(schema["enum"]) == wanted, ref
            else:
                raise AssertionError(f"{ref}: path parameter {name} is not described")
    assert seen == {*ID_PARAMETERS, "slug", "provider", "token"}


@pytest.mark.parametrize("prefix", list(IdPrefix))
def test_ids_are_minted_in_the_stated_shape(prefix: IdPrefix) -> None:
    """The id patterns are what ``new_id``, the one id minter of every service, makes (the
    gateway refuses others)."""
    minted = {formats.new_id(prefix) for _ in range(50)}
    assert len(minted) == 50
    for made in minted:
        assert re.fullmatch(formats.id_pattern(prefix), made)


@pytest.fixture
def client(nats_url: str) -> Iterator[TestClient]:
    app = create_app(GatewaySettings(nats_url=nats_url, rpc_timeout_seconds=0.3))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_malformed_path_value_is_a_400_before_any_service(client: TestClient) -> None:
    """Validation and schema are one thing: the path patterns are checked at the gateway."""
    for path in (
        "/public/alice/bookings/bk_nope",
        "/public/alice/bookings/bk_0123456789ABCDEF0123",
        "/public/a_b/bookings/bk_0123456789abcdef0123",
        "/public/-alice/availability?date=2030-01-01",
    ):
        response = client.get(path)
        assert response.status_code == 400, path
        assert response.json()["code"] == "invalid_request", path
    well_formed = client.get("/public/Alice/bookings/bk_0123456789abcdef0123")
    assert well_formed.status_code != 400, well_formed.text


# --- query parameters, headers ---------------------------------------------------------------


def test_query_parameters_and_headers(spec: dict[str, Any]) -> None:
    availability = "GET /public/{slug}/availability"
    zone = parameter(spec, availability, "timezone")["schema"]
    assert zone["enum"] == list(formats.time_zones())
    for ref in (availability, "GET /api/v1/availability"):  # date, or a range from..to
        for name in ("date", "from", "to"):
            day = string_branch(parameter(spec, ref, name)["schema"])
            assert day["format"] == "date" and re.match(day["pattern"], "1970-01-01")
            assert not re.match(day["pattern"], "1969-12-31")
            assert not re.match(day["pattern"], "9999-01-01")
    explain = parameter(spec, "GET /api/v1/availability", "explain")["schema"]
    assert explain["type"] == "boolean" and explain["default"] is False
    for name in ("from", "to"):
        moment = parameter(spec, "GET /api/v1/bookings", name)["schema"]
        assert re.match(moment["pattern"], "2026-01-01T00:00:00Z")
        assert not re.match(moment["pattern"], "0001-01-01T00:00:00Z")
    assert "e-mail" in parameter(spec, "GET /resolve", "identity")["description"]
    for ref in ("GET /api/v1/activity", "GET /api/v1/bookings"):
        assert parameter(spec, ref, "cursor")["schema"]["pattern"] == formats.BASE64URL
    state = parameter(spec, "GET /api/v1/calendars/{provider}/callback", "state")["schema"]
    assert state["pattern"] == formats.BASE64URL
    for ref, headers in {
        "POST /api/v1/webhooks/clerk": ("svix-id", "svix-timestamp", "svix-signature"),
        "POST /api/v1/webhooks/stripe": ("Stripe-Signature",),
    }.items():
        for name in headers:
            header = parameter(spec, ref, name)
            assert header["in"] == "header" and header["required"] is True, (ref, name)


def test_authentication_is_a_security_scheme(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["BearerApiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for ref, op in operations(spec):
        if ref.split(" ", 1)[1].startswith("/api/v1/") and "webhooks" not in ref:
            if "/callback" in ref or "/authorize" in ref or ref.endswith("/toon/encode"):
                continue
            assert op.get("security") == [{"BearerApiKey": []}], ref
            assert "401" in op["responses"], ref


def test_errors_have_the_json_error_shape(spec: dict[str, Any]) -> None:
    for ref, op in operations(spec):
        for status in ("400", "404", "409", "429"):
            entry = op["responses"].get(status)
            if entry is None:
                continue
            schema = entry["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (ref, status)


# --- bodies: the values the services accept ---------------------------------------------------


def test_body_fields_state_enums_and_formats(spec: dict[str, Any]) -> None:
    def enum(ref: str, name: str) -> list[str]:
        values: list[str] = string_branch(body_property(spec, ref, name))["enum"]
        return values

    assert enum("POST /api/v1/callers", "trust_level") == [t.value for t in TrustLevel]
    assert enum("PUT /api/v1/callers/{caller_id}", "trust_level") == [t.value for t in TrustLevel]
    assert enum("POST /api/v1/policies", "condition_type") == [c.value for c in ConditionType]
    assert enum("POST /api/v1/policies", "action") == [a.value for a in PolicyAction]
    assert enum("PUT /api/v1/policies/{policy_id}", "action") == [a.value for a in PolicyAction]
    assert enum("PUT /api/v1/settings/user-type", "user_type") == [u.value for u in UserType]
    assert enum("PUT /api/v1/settings/timezone", "timezone") == list(formats.time_zones())
    assert enum("POST /api/v1/billing/checkout", "plan_tier") == ["pro", "growth", "scale"]
    email = string_branch(body_property(spec, "POST /api/v1/callers", "email"))
    assert email["format"] == "email"
    slug = body_property(spec, "PUT /api/v1/settings/slug", "slug")
    assert slug["pattern"] == formats.SLUG_PATTERN
    hours = body_property(spec, "PUT /api/v1/settings/working-hours", "working_hours")
    assert hours["propertyNames"] == {"enum": list(WEEKDAYS)}
    booking = "POST /public/{slug}/book"
    assert body_property(spec, booking, "attendee_email")["format"] == "email"
    assert body_property(spec, booking, "start")["format"] == "date-time"
    assert not re.match(body_property(spec, booking, "end")["pattern"], "1969-12-31T23:00:00Z")
    url = body_property(spec, "POST /api/v1/calendars/caldav", "server_url")
    assert url["format"] == "uri" and url["pattern"] == "^https?://"
    policy = operation(spec, "POST /api/v1/policies")["requestBody"]["content"]
    variants = resolve(spec, policy["application/json"]["schema"])["oneOf"]
    assert {v["properties"]["condition_type"]["const"] for v in variants} == {
        c.value for c in ConditionType
    }


def _matches(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(re.compile(pattern.replace("$", r"\Z")))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_what_the_schema_allows_the_services_accept(data: st.DataObject) -> None:
    """Values drawn from the stated patterns and enums pass the services' own checks."""
    from booking.domain import policies
    from identity.domain import rules

    slug = data.draw(_matches(formats.SLUG_PATTERN).filter(lambda s: 3 <= len(s) <= 63))
    if slug not in rules.RESERVED_SLUGS:
        assert rules.check_slug(slug) == slug
    page = data.draw(_matches(formats.PAGE_SLUG_PATTERN).filter(lambda s: 3 <= len(s) <= 63))
    if page.lower() not in rules.RESERVED_SLUGS:
        assert rules.check_slug(page.lower())
    email = data.draw(st.emails().filter(lambda e: len(e) <= formats.EMAIL_MAX))
    assert formats.parse_email(email) == email.strip()
    kind = data.draw(st.sampled_from(ConditionType))
    value = data.draw(_matches(formats.CONDITION_VALUE_PATTERNS[kind]).filter(_not_degenerate))
    action = data.draw(st.sampled_from(PolicyAction))
    assert policies.validate_policy(kind.value, value, action.value).condition_type is kind
    assert policies.check_trust_level(data.draw(st.sampled_from(TrustLevel)).value)


def _not_degenerate(value: str) -> bool:
    """An outside_hours whose start equals its end is refused (empty): the one case a
    pattern cannot say."""
    start, dash, end = value.partition("-")
    return not (dash and ":" in start and start == end) and len(value) <= 253


def test_every_stated_zone_and_user_type_is_accepted() -> None:
    from identity.domain import rules

    for zone in formats.time_zones():
        assert rules.check_timezone(zone) == zone
    for user_type in UserType:
        assert rules.check_user_type(user_type.value) is user_type
    assert {t.value for t in PlanTier} >= {"pro", "growth", "scale"}


# --- links -----------------------------------------------------------------------------------


REQUIRED_LINKS = {
    # created by -> used by
    "POST /public/{slug}/book": (
        "GET /public/{slug}/bookings/{booking_id}",
        "GET /api/v1/bookings/{booking_id}",
        "POST /api/v1/bookings/{booking_id}/confirm",
        "POST /api/v1/bookings/{booking_id}/decline",
        "POST /api/v1/bookings/{booking_id}/cancel",
    ),
    "POST /api/v1/policies": (
        "GET /api/v1/policies/{policy_id}",
        "PUT /api/v1/policies/{policy_id}",
        "DELETE /api/v1/policies/{policy_id}",
    ),
    "POST /api/v1/callers": (
        "GET /api/v1/callers/{caller_id}",
        "PUT /api/v1/callers/{caller_id}",
        "DELETE /api/v1/callers/{caller_id}",
    ),
    "POST /api/v1/keys": ("DELETE /api/v1/keys/{key_id}",),
    "POST /api/v1/calendars/caldav": (
        "PUT /api/v1/calendars/calendars/{calendar_id}",
        "DELETE /api/v1/calendars/{provider}",
    ),
    "GET /api/v1/calendars/{provider}/callback": (
        "PUT /api/v1/calendars/calendars/{calendar_id}",
        "DELETE /api/v1/calendars/{provider}",
    ),
}


def test_links_from_the_operations_that_create_an_id(spec: dict[str, Any]) -> None:
    by_id = {op["operationId"]: ref for ref, op in operations(spec)}
    for source, targets in REQUIRED_LINKS.items():
        op = operation(spec, source)
        success = next(s for s in ("201", "200") if s in op["responses"])
        links = op["responses"][success].get("links", {})
        linked = {by_id[link["operationId"]]: link for link in links.values()}
        for target in targets:
            assert target in linked, f"{source} -> {target}"
            taken = {p["name"] for p in operation(spec, target)["parameters"]}
            id_params = {n for n in taken if n.endswith("_id") or n == "provider"}
            assert id_params <= set(linked[target]["parameters"]), (source, target)
            for expression in linked[target]["parameters"].values():
                assert re.fullmatch(r"\$(response\.body#/[\w/]+|request\.path\.\w+)", expression)


def test_every_link_resolves(spec: dict[str, Any]) -> None:
    ids = {op["operationId"] for _, op in operations(spec)}
    count = 0
    for _, op in operations(spec):
        for response in op["responses"].values():
            for name, link in response.get("links", {}).items():
                assert re.fullmatch(r"[A-Za-z0-9._-]+", name)
                assert link["operationId"] in ids
                count += 1
    assert count == len(LINKS)


@pytest.mark.parametrize(("first", "last"), [(1970, 9998), (1971, 9997), (1, 9999), (1999, 2001)])
def test_year_patterns_hold_exactly_their_years(first: int, last: int) -> None:
    from gateway.params import years

    pattern = re.compile(years(first, last)["pattern"])  # type: ignore[arg-type]
    held = [y for y in range(10000) if pattern.match(f"{y:04d}-01-01")]
    assert held == list(range(first, last + 1))


def test_free_text_parameters_state_that_they_hold_no_control_character(
    spec: dict[str, Any],
) -> None:
    """The gateway refuses a control character in every URL value (PostgreSQL refuses NUL):
    the schema says so wherever no stricter pattern does."""
    for ref, op in operations(spec):
        for param in op.get("parameters", []):
            if param["in"] not in ("path", "query"):
                continue
            schema = resolve(spec, param["schema"])
            for branch in schema.get("anyOf", [schema]):
                if branch.get("type") == "string" and "enum" not in branch:
                    stated = branch.get("pattern") or schema.get("pattern")
                    assert stated, f"{ref}: {param['name']} states no pattern"
                    assert not re.search(stated, "a\x00b"), (ref, param["name"])
