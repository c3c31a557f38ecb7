"""Every error leaves the gateway as JSON, FastAPI's own 404/405/422 included."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from gateway.app import create_app
from gateway.settings import GatewaySettings


class Thing(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    count: int = 1


probe = APIRouter()


@probe.post("/probe/things", status_code=201)
async def create_thing(thing: Thing) -> Thing:
    return thing


@probe.get("/probe/crash")
async def crash() -> None:
    raise RuntimeError("internal detail that must not leak")


@pytest.fixture
def client(nats_url: str) -> Iterator[TestClient]:
    app = create_app(GatewaySettings(nats_url=nats_url, ready_timeout_seconds=0.5))
    app.include_router(probe)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_unknown_path_is_json_404(client: TestClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "No route matches GET /no/such/thing.", "code": "not_found"}


def test_wrong_method_is_json_405(client: TestClient) -> None:
    response = client.delete("/health")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "DELETE" in response.json()["error"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/probe/things", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "The request body is not valid JSON.",
        "code": "invalid_request",
    }


def test_validation_error_is_400_naming_the_field(client: TestClient) -> None:
    response = client.post("/probe/things", json={"name": "", "count": "many"})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "code"} and body["code"] == "invalid_request"
    assert "name" in body["error"] and "count" in body["error"]


def test_valid_request_passes(client: TestClient) -> None:
    response = client.post("/probe/things", json={"name": "ok"})
    assert response.status_code == 201 and response.json() == {"name": "ok", "count": 1}


def test_unexpected_failure_is_json_500_without_details(client: TestClient) -> None:
    response = client.get("/probe/crash")
    assert response.status_code == 500
    assert response.json() == {"error": "Internal error.", "code": "internal_error"}


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert (
        made.headers["X-Request-ID"] != "bad id with spaces"
        and len(made.headers["X-Request-ID"]) == 32
    )


def test_ready_names_every_missing_service(client: TestClient) -> None:
    deadline = time.monotonic() + 10
    response = client.get("/ready")
    while response.json().get("nats") is not True and time.monotonic() < deadline:
        time.sleep(0.1)  # the gateway's broker connects in the background; on a busy machine
        response = client.get("/ready")  # the first answer may come before it has
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["missing"] == ["identity", "booking", "calendars", "billing"]
    assert "identity" in body["error"] and "billing" in body["error"]
    assert body["services"]["booking"]["reason"] == "The booking service is not running."


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Cortex"
    assert "/ready" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_ready_when_nats_is_down(tmp_path: object) -> None:
    from cortex_dev.embedded import free_port

    app = create_app(GatewaySettings(nats_url=f"nats://127.0.0.1:{free_port()}"))
    with TestClient(app) as test_client:
        response = test_client.get("/ready")
        assert response.status_code == 503
        assert response.json()["missing"][0] == "nats"
        assert test_client.get("/health").status_code == 200


def test_405_allows_every_method_the_path_serves(client: TestClient) -> None:
    response = client.request("PATCH", "/api/v1/policies/pol_1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT, DELETE"
    assert client.request("OPTIONS", "/api/v1/callers").headers["allow"] == "GET, POST"


def test_control_characters_in_url_parameters_are_400(client: TestClient) -> None:
    # PostgreSQL refuses NUL in text: such values never reach a service
    response = client.get(
        "/api/v1/calendars/google/callback", params={"code": "a\x00b", "state": "s"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert "control characters" in response.json()["error"]


def test_openapi_documents_what_the_gateway_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["BearerApiKey"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            assert "422" not in responses, where  # validation errors are 400
            if op.get("parameters") or "requestBody" in op:
                assert "400" in responses, where
            if "requestBody" in op:
                assert {"413", "415"} <= set(responses), where
            if op.get("security"):
                assert "401" in responses, where
                if not path.startswith(
                    ("/api/v1/billing/", "/api/v1/usage/", "/api/v1/dashboard/")
                ):
                    assert "429" in responses, where  # the daily call limit
            for status, response in responses.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == error_ref, (where, status)
    secured = [op for item in spec["paths"].values() for op in item.values() if op.get("security")]
    assert len(secured) > 30
