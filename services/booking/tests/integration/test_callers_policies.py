"""Callers and policies served as a process over real NATS and PostgreSQL.

The service under test is this very file run as a script: a ``booking`` runtime serving only
the callers and policies routes of booking's handler table, on a database built by booking's
real migrations.
So the test does not depend on what booking's bootstrap registers.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from booking.domain.policies import BookingFacts, Decision
from booking.service_layer import policies
from contracts import policies as msg
from contracts.policies import PolicyAction, TrustLevel
from contracts.rpc import ErrorKind
from cortex_dev.pytest_plugin import Processes
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient
from cortex_runtime.database import Database, UnitOfWork
from cortex_runtime.errors import ServiceError

pytestmark = pytest.mark.integration

SERVICE = Path(__file__)
TENANT = "tn_policies_a"
OTHER = "tn_policies_b"


@pytest.fixture
def booking_db(service_database: Callable[[str], str]) -> str:
    return service_database("booking")


@pytest.fixture
async def rpc(processes: Processes, booking_db: str, nats_url: str) -> AsyncIterator[RpcClient]:
    processes.start(
        "booking",
        [sys.executable, str(SERVICE)],
        {
            "CORTEX_ENV": "test",
            "CORTEX_NATS_URL": nats_url,
            "CORTEX_BOOKING_DATABASE_URL": booking_db,
        },
    )
    processes.wait_for_log("booking", "service ready")
    broker = build_broker(nats_url, "test")
    async with broker:
        await broker.connect()
        yield RpcClient(broker, timeout=15)


async def refused(call: Awaitable[object], kind: ErrorKind, code: str) -> ServiceError:
    with pytest.raises(ServiceError) as failure:
        await call
    assert (failure.value.kind, failure.value.code) == (kind, code), failure.value.reply
    assert failure.value.reply.message.endswith(".")
    return failure.value


# --- callers -------------------------------------------------------------------------------------


async def test_caller_crud(rpc: RpcClient) -> None:
    created = (
        await rpc.call(
            msg.CREATE_CALLER,
            msg.CreateCaller(
                tenant_id=TENANT,
                email=" Alice@Example.com ",
                display_name="Alice\u200b  Smith\x07",
                trust_level="trusted",
            ),
        )
    ).caller
    assert created.id.startswith("clr_")
    assert (created.email, created.display_name, created.trust_level) == (
        "Alice@Example.com",
        "Alice Smith",
        TrustLevel.TRUSTED,
    )
    bob = (
        await rpc.call(msg.CREATE_CALLER, msg.CreateCaller(tenant_id=TENANT, email="bob@x.io"))
    ).caller
    assert bob.trust_level is TrustLevel.STANDARD and bob.display_name == ""

    listed = await rpc.call(msg.LIST_CALLERS, msg.ListCallers(tenant_id=TENANT))
    assert [c.id for c in listed.callers] == [created.id, bob.id]  # oldest first

    # partial update: only the trust level changes
    updated = (
        await rpc.call(
            msg.UPDATE_CALLER,
            msg.UpdateCaller(tenant_id=TENANT, caller_id=bob.id, trust_level="Blocked"),
        )
    ).caller
    assert updated.model_dump(exclude={"trust_level"}) == bob.model_dump(exclude={"trust_level"})
    assert updated.trust_level is TrustLevel.BLOCKED
    renamed = (
        await rpc.call(
            msg.UPDATE_CALLER,
            msg.UpdateCaller(
                tenant_id=TENANT, caller_id=bob.id, email="robert@x.io", display_name="Robert"
            ),
        )
    ).caller
    assert (renamed.email, renamed.display_name, renamed.trust_level) == (
        "robert@x.io",
        "Robert",
        TrustLevel.BLOCKED,
    )
    unchanged = await rpc.call(
        msg.UPDATE_CALLER, msg.UpdateCaller(tenant_id=TENANT, caller_id=bob.id)
    )
    assert unchanged.caller == renamed

    deleted = await rpc.call(
        msg.DELETE_CALLER, msg.DeleteCaller(tenant_id=TENANT, caller_id=bob.id)
    )
    assert deleted.caller_id == bob.id
    await refused(
        rpc.call(msg.DELETE_CALLER, msg.DeleteCaller(tenant_id=TENANT, caller_id=bob.id)),
        ErrorKind.NOT_FOUND,
        "caller_not_found",
    )
    listed = await rpc.call(msg.LIST_CALLERS, msg.ListCallers(tenant_id=TENANT))
    assert [c.id for c in listed.callers] == [created.id]


async def test_caller_email_is_unique_per_tenant(rpc: RpcClient) -> None:
    first = await rpc.call(
        msg.CREATE_CALLER, msg.CreateCaller(tenant_id=TENANT, email="carol@example.com")
    )
    await refused(
        rpc.call(msg.CREATE_CALLER, msg.CreateCaller(tenant_id=TENANT, email="CAROL@example.COM")),
        ErrorKind.CONFLICT,
        "caller_exists",
    )
    dave = await rpc.call(
        msg.CREATE_CALLER, msg.CreateCaller(tenant_id=TENANT, email="dave@example.com")
    )
    await refused(
        rpc.call(
            msg.UPDATE_CALLER,
            msg.UpdateCaller(tenant_id=TENANT, caller_id=dave.caller.id, email="Carol@Example.com"),
        ),
        ErrorKind.CONFLICT,
        "caller_exists",
    )
    # another tenant may describe the same person
    theirs = await rpc.call(
        msg.CREATE_CALLER, msg.CreateCaller(tenant_id=OTHER, email="carol@example.com")
    )
    assert theirs.caller.id != first.caller.id


async def test_invalid_callers_are_refused(rpc: RpcClient) -> None:
    await refused(
        rpc.call(
            msg.CREATE_CALLER,
            msg.CreateCaller(tenant_id=TENANT, email="eve@example.com", trust_level="vip"),
        ),
        ErrorKind.INVALID,
        "invalid_trust_level",
    )
    await refused(
        rpc.call(msg.CREATE_CALLER, msg.CreateCaller(tenant_id=TENANT, email="not-an-email")),
        ErrorKind.INVALID,
        "invalid_email",
    )
    eve = await rpc.call(
        msg.CREATE_CALLER, msg.CreateCaller(tenant_id=TENANT, email="eve@example.com")
    )
    await refused(
        rpc.call(
            msg.UPDATE_CALLER,
            msg.UpdateCaller(tenant_id=TENANT, caller_id=eve.caller.id, trust_level="admin"),
        ),
        ErrorKind.INVALID,
        "invalid_trust_level",
    )
    await refused(
        rpc.call(msg.LIST_CALLERS, msg.ListCallers()), ErrorKind.UNAUTHORIZED, "tenant_required"
    )


async def test_callers_of_another_tenant_are_not_found(rpc: RpcClient) -> None:
    mine = (
        await rpc.call(
            msg.CREATE_CALLER, msg.CreateCaller(tenant_id=TENANT, email="frank@example.com")
        )
    ).caller
    theirs = await rpc.call(msg.LIST_CALLERS, msg.ListCallers(tenant_id=OTHER))
    assert theirs.callers == []
    await refused(
        rpc.call(
            msg.UPDATE_CALLER,
            msg.UpdateCaller(tenant_id=OTHER, caller_id=mine.id, trust_level="trusted"),
        ),
        ErrorKind.NOT_FOUND,
        "caller_not_found",
    )
    await refused(
        rpc.call(msg.UPDATE_CALLER, msg.UpdateCaller(tenant_id=OTHER, caller_id=mine.id)),
        ErrorKind.NOT_FOUND,
        "caller_not_found",
    )
    await refused(
        rpc.call(msg.DELETE_CALLER, msg.DeleteCaller(tenant_id=OTHER, caller_id=mine.id)),
        ErrorKind.NOT_FOUND,
        "caller_not_found",
    )
    still = await rpc.call(msg.LIST_CALLERS, msg.ListCallers(tenant_id=TENANT))
    assert still.callers == [mine]


# --- policies ------------------------------------------------------------------------------------


def new_policy(tenant: str = TENANT, /, **fields: object) -> msg.CreatePolicy:
    body: dict[str, object] = {
        "tenant_id": tenant,
        "name": "Block external bookings",
        "condition_type": "caller_domain",
        "condition_value": "external",
        "action": "deny",
        "priority": 100,
        **fields,
    }
    return msg.CreatePolicy.model_validate(body)


async def test_policy_crud_and_evaluation_order(rpc: RpcClient) -> None:
    seed = (await rpc.call(msg.CREATE_POLICY, new_policy())).policy
    assert seed.id.startswith("pol_") and seed.enabled
    assert (seed.condition_type, seed.condition_value, seed.action, seed.priority) == (
        msg.ConditionType.CALLER_DOMAIN,
        "external",
        PolicyAction.DENY,
        100,
    )
    long = (
        await rpc.call(
            msg.CREATE_POLICY,
            new_policy(
                name="Confirm long meetings",
                condition_type="duration_over",
                condition_value="60",
                action="require_confirmation",
                priority=100,
            ),
        )
    ).policy
    weekend = (
        await rpc.call(
            msg.CREATE_POLICY,
            new_policy(
                name="  No weekends\u200b ",
                condition_type="Weekday",
                condition_value="sun, sat",
                action="deny",
                priority=500,
            ),
        )
    ).policy
    assert (weekend.name, weekend.condition_type, weekend.condition_value) == (
        "No weekends",
        msg.ConditionType.WEEKDAY,
        "sat,sun",
    )
    listed = await rpc.call(msg.LIST_POLICIES, msg.ListPolicies(tenant_id=TENANT))
    assert [p.id for p in listed.policies] == [weekend.id, seed.id, long.id]  # ties: oldest

    got = await rpc.call(msg.GET_POLICY, msg.GetPolicy(tenant_id=TENANT, policy_id=long.id))
    assert got.policy == long

    # a partial update keeps the other fields
    moved = (
        await rpc.call(
            msg.UPDATE_POLICY,
            msg.UpdatePolicy(tenant_id=TENANT, policy_id=long.id, priority=1000, enabled=False),
        )
    ).policy
    assert moved.model_dump(exclude={"priority", "enabled"}) == long.model_dump(
        exclude={"priority", "enabled"}
    )
    assert (moved.priority, moved.enabled) == (1000, False)
    hours = (
        await rpc.call(
            msg.UPDATE_POLICY,
            msg.UpdatePolicy(
                tenant_id=TENANT,
                policy_id=long.id,
                condition_type="outside_hours",
                condition_value="22:00-6:00",
            ),
        )
    ).policy
    assert (hours.condition_type, hours.condition_value, hours.enabled) == (
        msg.ConditionType.OUTSIDE_HOURS,
        "22:00-06:00",
        False,
    )
    listed = await rpc.call(msg.LIST_POLICIES, msg.ListPolicies(tenant_id=TENANT))
    assert [p.id for p in listed.policies] == [long.id, weekend.id, seed.id]

    deleted = await rpc.call(
        msg.DELETE_POLICY, msg.DeletePolicy(tenant_id=TENANT, policy_id=seed.id)
    )
    assert deleted.policy_id == seed.id
    await refused(
        rpc.call(msg.GET_POLICY, msg.GetPolicy(tenant_id=TENANT, policy_id=seed.id)),
        ErrorKind.NOT_FOUND,
        "policy_not_found",
    )
    await refused(
        rpc.call(msg.DELETE_POLICY, msg.DeletePolicy(tenant_id=TENANT, policy_id=seed.id)),
        ErrorKind.NOT_FOUND,
        "policy_not_found",
    )


INVALID_POLICIES: list[tuple[dict[str, object], str]] = [
    ({"condition_type": "caller_country", "condition_value": "FR"}, "invalid_condition_type"),
    ({"action": "maybe"}, "invalid_action"),
    ({"condition_value": "not a domain"}, "invalid_condition_value"),
    ({"condition_type": "caller_email", "condition_value": "bob"}, "invalid_condition_value"),
    ({"condition_type": "caller_trust_level", "condition_value": "vip"}, "invalid_condition_value"),
    ({"condition_type": "duration_over", "condition_value": "0"}, "invalid_condition_value"),
    ({"condition_type": "duration_over", "condition_value": "1441"}, "invalid_condition_value"),
    ({"condition_type": "weekday", "condition_value": "funday"}, "invalid_condition_value"),
    ({"condition_type": "outside_hours", "condition_value": "9-5"}, "invalid_condition_value"),
    ({"name": " \u200b "}, "invalid_name"),
]


async def test_invalid_policies_are_refused_at_creation(rpc: RpcClient) -> None:
    for fields, code in INVALID_POLICIES:  # one service process for every case
        await refused(rpc.call(msg.CREATE_POLICY, new_policy(**fields)), ErrorKind.INVALID, code)
    listed = await rpc.call(msg.LIST_POLICIES, msg.ListPolicies(tenant_id=TENANT))
    assert listed.policies == []


async def test_an_update_is_validated_as_a_whole(rpc: RpcClient) -> None:
    policy = (await rpc.call(msg.CREATE_POLICY, new_policy())).policy
    # the type changes but the kept value "external" is no duration
    await refused(
        rpc.call(
            msg.UPDATE_POLICY,
            msg.UpdatePolicy(tenant_id=TENANT, policy_id=policy.id, condition_type="duration_over"),
        ),
        ErrorKind.INVALID,
        "invalid_condition_value",
    )
    await refused(
        rpc.call(
            msg.UPDATE_POLICY,
            msg.UpdatePolicy(tenant_id=TENANT, policy_id=policy.id, action="explode"),
        ),
        ErrorKind.INVALID,
        "invalid_action",
    )
    got = await rpc.call(msg.GET_POLICY, msg.GetPolicy(tenant_id=TENANT, policy_id=policy.id))
    assert got.policy == policy


async def test_policies_of_another_tenant_are_not_found(rpc: RpcClient) -> None:
    mine = (await rpc.call(msg.CREATE_POLICY, new_policy())).policy
    assert (await rpc.call(msg.LIST_POLICIES, msg.ListPolicies(tenant_id=OTHER))).policies == []
    for call in (
        rpc.call(msg.GET_POLICY, msg.GetPolicy(tenant_id=OTHER, policy_id=mine.id)),
        rpc.call(
            msg.UPDATE_POLICY, msg.UpdatePolicy(tenant_id=OTHER, policy_id=mine.id, priority=1)
        ),
        rpc.call(msg.DELETE_POLICY, msg.DeletePolicy(tenant_id=OTHER, policy_id=mine.id)),
    ):
        await refused(call, ErrorKind.NOT_FOUND, "policy_not_found")
    got = await rpc.call(msg.GET_POLICY, msg.GetPolicy(tenant_id=TENANT, policy_id=mine.id))
    assert got.policy == mine


# --- the saga's question -----------------------------------------------------------------------


async def test_decide_for_booking_reads_callers_and_policies(
    rpc: RpcClient, booking_db: str
) -> None:
    async def create_caller(email: str, level: str, tenant: str = TENANT) -> None:
        await rpc.call(
            msg.CREATE_CALLER, msg.CreateCaller(tenant_id=tenant, email=email, trust_level=level)
        )

    await create_caller("Boss@Partner.io", "trusted")
    await create_caller("spam@partner.io", "blocked")
    await create_caller("mallory@partner.io", "restricted")
    await create_caller("friend@partner.io", "blocked", tenant=OTHER)  # not this tenant's
    external = (await rpc.call(msg.CREATE_POLICY, new_policy(priority=10))).policy
    trusted = (
        await rpc.call(
            msg.CREATE_POLICY,
            new_policy(
                name="Trusted callers",
                condition_type="caller_trust_level",
                condition_value="trusted",
                action="allow",
                priority=20,
            ),
        )
    ).policy
    await rpc.call(
        msg.CREATE_POLICY,
        new_policy(
            name="Disabled catch-all",
            condition_type="duration_over",
            condition_value="1",
            priority=99,
            enabled=False,
        ),
    )
    await rpc.call(  # last: whatever nothing above decided
        msg.CREATE_POLICY,
        new_policy(
            name="Elsewhere", condition_type="duration_over", condition_value="1", priority=0
        ),
    )
    await rpc.call(
        msg.CREATE_POLICY,
        new_policy(OTHER, name="Theirs", condition_type="duration_over", condition_value="1"),
    )

    start = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    db = Database(booking_db, pool_size=1)
    try:

        async def decide(attendee: str, tenant: str = TENANT) -> Decision:
            facts = BookingFacts(
                attendee_email=attendee,
                owner_email="owner@acme.com",
                owner_timezone="America/New_York",
                start=start,
                end=start + timedelta(minutes=30),
            )
            async with UnitOfWork(db) as uow:
                return await policies.decide_for_booking(uow, tenant, facts)

        boss = await decide("boss@PARTNER.io")
        assert (boss.action, boss.policy_id) == (PolicyAction.ALLOW, trusted.id)
        stranger = await decide("nobody@partner.io")  # unknown: standard
        assert (stranger.action, stranger.policy_id, stranger.policy_name) == (
            PolicyAction.DENY,
            external.id,
            "Block external bookings",
        )
        blocked = await decide("spam@partner.io")
        assert (blocked.action, blocked.policy_id) == (PolicyAction.DENY, None)
        assert "blocked" in blocked.reason
        colleague = await decide("carol@acme.com")  # internal, standard
        assert colleague.action is PolicyAction.DENY and colleague.policy_name == "Elsewhere"
        # the other tenant's callers and policies do not leak into this tenant's decisions
        friend = await decide("friend@partner.io")
        assert friend.policy_id == external.id
        theirs = await decide("friend@partner.io", tenant=OTHER)
        assert (theirs.action, theirs.policy_id) == (PolicyAction.DENY, None)
        assert (await decide("mallory@partner.io", tenant=OTHER)).policy_name == "Theirs"
    finally:
        await db.dispose()


# --- through the gateway's routes ---------------------------------------------------------------


async def test_rest_routes(rpc: RpcClient) -> None:
    from fastapi import FastAPI

    from gateway.deps import Caller, tenant_caller
    from gateway.errors import install_error_handlers
    from gateway.routes.callers_policies import router

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.dependency_overrides[tenant_caller] = lambda: Caller(rpc, "req-1", TENANT)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        alice = {
            "email": "alice@example.com",
            "display_name": "Alice Smith",
            "trust_level": "trusted",
        }
        created = await http.post("/api/v1/callers", json=alice)
        assert created.status_code == 201, created.text
        caller = created.json()
        assert {k: caller[k] for k in alice} == alice
        again = await http.post("/api/v1/callers", json=alice)
        assert (again.status_code, again.json()["code"]) == (409, "caller_exists")
        assert "error" in again.json()
        bad = await http.post("/api/v1/callers", json={**alice, "trust_level": "vip"})
        assert (bad.status_code, bad.json()["code"]) == (400, "invalid_trust_level")
        listed = await http.get("/api/v1/callers")
        assert [c["id"] for c in listed.json()["callers"]] == [caller["id"]]
        put = await http.put(f"/api/v1/callers/{caller['id']}", json={"trust_level": "blocked"})
        assert put.status_code == 200 and put.json()["trust_level"] == "blocked"
        assert put.json()["display_name"] == "Alice Smith"
        missing = await http.put(
            "/api/v1/callers/clr_00000000000000000000", json={"trust_level": "trusted"}
        )
        assert (missing.status_code, missing.json()["code"]) == (404, "caller_not_found")
        gone = await http.delete(f"/api/v1/callers/{caller['id']}")
        assert gone.status_code == 200 and gone.json() == {"id": caller["id"], "deleted": True}
        assert (await http.delete(f"/api/v1/callers/{caller['id']}")).status_code == 404

        seed = {
            "name": "Block external bookings",
            "condition_type": "caller_domain",
            "condition_value": "external",
            "action": "deny",
            "priority": 100,
        }
        created = await http.post("/api/v1/policies", json=seed)
        assert created.status_code == 201, created.text
        policy = created.json()
        assert {k: policy[k] for k in seed} == seed and policy["enabled"] is True
        for wrong, code in (
            ({"condition_type": "moon_phase"}, "invalid_condition_type"),
            ({"condition_value": "nope"}, "invalid_condition_value"),
            ({"action": "shrug"}, "invalid_action"),
        ):
            refused = await http.post("/api/v1/policies", json={**seed, **wrong})
            assert (refused.status_code, refused.json()["code"]) == (400, code)
        schema = await http.post("/api/v1/policies", json={"name": "x"})
        assert schema.status_code == 400 and schema.json()["code"] == "invalid_request"
        got = await http.get(f"/api/v1/policies/{policy['id']}")
        assert got.json() == policy
        put = await http.put(f"/api/v1/policies/{policy['id']}", json={"enabled": False})
        assert put.status_code == 200 and put.json() == {**policy, "enabled": False}
        bad_put = await http.put(
            f"/api/v1/policies/{policy['id']}", json={"condition_type": "weekday"}
        )
        assert (bad_put.status_code, bad_put.json()["code"]) == (400, "invalid_condition_value")
        listed = await http.get("/api/v1/policies")
        assert [p["id"] for p in listed.json()["policies"]] == [policy["id"]]
        assert (await http.delete(f"/api/v1/policies/{policy['id']}")).status_code == 200
        missing = await http.get(f"/api/v1/policies/{policy['id']}")
        assert (missing.status_code, missing.json()["code"]) == (404, "policy_not_found")


async def test_one_caller_by_id_through_the_gateway_route(rpc: RpcClient) -> None:
    """``GET /api/v1/callers/{id}``, as policies have: the caller, else a 404 JSON error for
    an unknown id and for another tenant's caller alike."""
    from fastapi import FastAPI

    from gateway.deps import Caller, tenant_caller
    from gateway.errors import install_error_handlers
    from gateway.routes.callers_policies import router

    theirs = (
        await rpc.call(
            msg.CREATE_CALLER, msg.CreateCaller(tenant_id=OTHER, email="grace@example.com")
        )
    ).caller
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.dependency_overrides[tenant_caller] = lambda: Caller(rpc, "req-2", TENANT)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        created = await http.post(
            "/api/v1/callers", json={"email": "heidi@example.com", "trust_level": "restricted"}
        )
        caller = created.json()
        got = await http.get(f"/api/v1/callers/{caller['id']}")
        assert got.status_code == 200 and got.json() == caller
        for unknown in ("clr_00000000000000000000", theirs.id):
            missing = await http.get(f"/api/v1/callers/{unknown}")
            assert missing.status_code == 404, missing.text
            assert missing.json()["code"] == "caller_not_found" and missing.json()["error"]
        await http.delete(f"/api/v1/callers/{caller['id']}")
        assert (await http.get(f"/api/v1/callers/{caller['id']}")).status_code == 404
    await refused(
        rpc.call(msg.GET_CALLER, msg.GetCaller(tenant_id=OTHER, caller_id=caller["id"])),
        ErrorKind.NOT_FOUND,
        "caller_not_found",
    )


# --- the service under test, when this file is run as a script -------------------------------


def _serve() -> None:
    from booking.entrypoints.bootstrap import build_deps
    from booking.entrypoints.handlers import handlers
    from booking.service_layer import callers
    from booking.settings import BookingSettings
    from contracts import subjects
    from cortex_runtime.logs import configure_logging
    from cortex_runtime.service import ServiceRuntime

    settings = BookingSettings()
    configure_logging(subjects.BOOKING, settings.log_level, settings.log_format)
    runtime = ServiceRuntime(subjects.BOOKING, settings)
    served = (callers.__name__, policies.__name__)
    routes = [route for route in handlers(settings) if route.handler.__module__ in served]
    runtime.register(routes, build_deps(runtime, settings))
    asyncio.run(runtime.app().run())


if __name__ == "__main__":
    _serve()
