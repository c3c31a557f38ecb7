"""A small local fake of the Stripe endpoints localstripe lacks, in Stripe's wire format.

Serves ``POST /v1/checkout/sessions`` (and ``GET /v1/checkout/sessions/{id}``) and
``POST /v1/billing_portal/sessions``: form-encoded bodies in Stripe's bracket notation
(``line_items[0][price]=...``, ``metadata[tenant_id]=...``), JSON answers with ``id``,
``object`` and ``url``, Stripe's error shape (``{"error": {"type", "code", "message",
"param"}}``), Bearer secret keys, and Idempotency-Key replays (the same key with other
parameters is refused, as Stripe does).

Every other request is forwarded to ``upstream`` (e.g. a localstripe server for customers,
products and subscriptions), so one base address serves the whole SDK. Without an upstream
the fake answers customers itself (create, retrieve, list).

    fake = FakeStripe(upstream=localstripe_url)
    fake.add_price("price_pro")
    base_url, stop = run_in_thread(fake.app)
    client = stripe.StripeClient("sk_test_...", base_addresses={"api": base_url})
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_KEY = re.compile(r"^(sk|rk)_test_[A-Za-z0-9_]+$")
_TOKEN = re.compile(r"[^\[\]]+")


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(18).replace('-', 'a').replace('_', 'b')}"


def _error(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> JSONResponse:
    kind = "idempotency_error" if code == "idempotency_key_in_use" else "invalid_request_error"
    body: dict[str, Any] = {"type": kind, "message": message}
    if code:
        body["code"] = code
    if param:
        body["param"] = param
    return JSONResponse({"error": body}, status_code=status, headers={"Request-Id": _id("req")})


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(key.isdigit() for key in node):
            return [_listify(node[key]) for key in sorted(node, key=int)]
        return {key: _listify(value) for key, value in node.items()}
    return node


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding: ``a[b][0][c]=v`` becomes ``{"a": {"b": [{"c": "v"}]}}``."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        tokens = _TOKEN.findall(key)
        if not tokens:
            continue
        node = root
        for token in tokens[:-1]:
            child = node.get(token)
            if not isinstance(child, dict):
                child = node[token] = {}
            node = child
        node[tokens[-1]] = value
    result: dict[str, Any] = _listify(root)
    return result


@dataclass
class RecordedRequest:
    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]


@dataclass
class _Replay:
    fingerprint: str
    status: int
    body: bytes


@dataclass
class _State:
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkout_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    replays: dict[tuple[str, str], _Replay] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)


class FakeStripe:
    """The fake and its controls; serve :attr:`app` (e.g. with ``run_in_thread``)."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self._state = _State()
        self._lock = threading.Lock()
        routes = [
            Route("/v1/checkout/sessions", self._create_checkout, methods=["POST"]),
            Route("/v1/checkout/sessions/{sid}", self._get_checkout, methods=["GET"]),
            Route("/v1/billing_portal/sessions", self._create_portal, methods=["POST"]),
        ]
        if self.upstream is None:
            routes += [
                Route("/v1/customers", self._create_customer, methods=["POST"]),
                Route("/v1/customers", self._list_customers, methods=["GET"]),
                Route("/v1/customers/{cid}", self._get_customer, methods=["GET"]),
            ]
        routes.append(
            Route("/{path:path}", self._forward, methods=["GET", "POST", "DELETE", "PUT"])
        )
        self.app = Starlette(routes=routes)

    # --- controls -----------------------------------------------------------------------
    def add_price(
        self,
        price_id: str,
        *,
        unit_amount: int = 2900,
        currency: str = "usd",
        recurring: bool = True,
    ) -> None:
        with self._lock:
            self._state.prices[price_id] = {
                "id": price_id,
                "object": "price",
                "unit_amount": unit_amount,
                "currency": currency,
                "type": "recurring" if recurring else "one_time",
                "recurring": {"interval": "month", "interval_count": 1} if recurring else None,
            }

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    def checkout_sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._state.checkout_sessions.values()]

    def portal_sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._state.portal_sessions.values()]

    def customers(self) -> list[dict[str, Any]]:
        """The customers this fake itself holds (without an upstream)."""
        with self._lock:
            return [dict(c) for c in self._state.customers.values()]

    def complete_checkout(
        self, session_id: str, subscription_id: str | None = None
    ) -> dict[str, Any]:
        """Pay a session as the customer would; the ``checkout.session.completed`` event."""
        with self._lock:
            session = self._state.checkout_sessions[session_id]
            session.update(
                status="complete",
                payment_status="paid",
                subscription=subscription_id or _id("sub"),
            )
            snapshot = json.loads(json.dumps(session))
        return event("checkout.session.completed", snapshot)

    # --- plumbing ------------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(_KEY.match(key.strip()))

    async def _begin(self, request: Request) -> tuple[dict[str, Any], str | None, Response | None]:
        """Parse and record a request; an early answer (401, replay) when there is one."""
        raw = (await request.body()).decode()
        params = parse_form(raw) if request.method == "POST" else dict(request.query_params)
        key = request.headers.get("idempotency-key")
        with self._lock:
            self._state.requests.append(
                RecordedRequest(request.method, request.url.path, key, params)
            )
        if not self._authorized(request):
            return params, key, _error(401, "Invalid API Key provided.")
        if key and request.method == "POST":
            fingerprint = f"{request.url.path}?{raw}"
            auth = request.headers["authorization"]
            with self._lock:
                replay = self._state.replays.get((auth, key))
            if replay is not None:
                if replay.fingerprint != fingerprint:
                    return (
                        params,
                        key,
                        _error(
                            400,
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with.",
                            code="idempotency_key_in_use",
                        ),
                    )
                return (
                    params,
                    key,
                    Response(
                        replay.body,
                        status_code=replay.status,
                        media_type="application/json",
                        headers={"Idempotent-Replayed": "true", "Request-Id": _id("req")},
                    ),
                )
        return params, key, None

    def _finish(
        self, request: Request, key: str | None, raw: str, answer: JSONResponse
    ) -> Response:
        if key and request.method == "POST" and answer.status_code < 500:
            with self._lock:
                self._state.replays[(request.headers["authorization"], key)] = _Replay(
                    f"{request.url.path}?{raw}", answer.status_code, bytes(answer.body)
                )
        answer.headers["Request-Id"] = _id("req")
        return answer

    async def _customer_exists(self, request: Request, customer_id: str) -> bool:
        if self.upstream is None:
            with self._lock:
                return customer_id in self._state.customers
        async with httpx.AsyncClient(timeout=10) as client:
            found = await client.get(
                f"{self.upstream}/v1/customers/{customer_id}",
                headers={"Authorization": request.headers["authorization"]},
            )
        return found.status_code == 200 and not found.json().get("deleted")

    # --- checkout sessions ---------------------------------------------------------------
    async def _create_checkout(self, request: Request) -> Response:
        params, key, early = await self._begin(request)
        if early is not None:
            return early
        raw = (await request.body()).decode()
        answer = await self._checkout(request, params)
        return self._finish(request, key, raw, answer)

    async def _checkout(self, request: Request, params: dict[str, Any]) -> JSONResponse:
        mode = params.get("mode")
        if not mode:
            return _error(
                400, "Missing required param: mode.", code="parameter_missing", param="mode"
            )
        if mode not in ("payment", "setup", "subscription"):
            return _error(
                400, f"Invalid mode: {mode}.", code="parameter_invalid_empty", param="mode"
            )
        if not params.get("success_url"):
            return _error(
                400,
                "Missing required param: success_url.",
                code="parameter_missing",
                param="success_url",
            )
        items = params.get("line_items")
        if mode != "setup" and not (isinstance(items, list) and items):
            return _error(
                400,
                "Missing required param: line_items.",
                code="parameter_missing",
                param="line_items",
            )
        amount = 0
        currency = "usd"
        for index, item in enumerate(items or []):
            param = f"line_items[{index}][price]"
            price_id = item.get("price") if isinstance(item, dict) else None
            with self._lock:
                price = self._state.prices.get(price_id or "")
            if price is None:
                return _error(
                    400, f"No such price: '{price_id}'", code="resource_missing", param=param
                )
            if mode == "subscription" and price["type"] != "recurring":
                return _error(
                    400,
                    "You must provide at least one recurring price in `subscription` mode "
                    "when using prices.",
                    param=param,
                )
            try:
                quantity = int(item.get("quantity", "1"))
            except ValueError:
                return _error(
                    400, "Invalid integer: quantity", param=f"line_items[{index}][quantity]"
                )
            amount += price["unit_amount"] * quantity
            currency = price["currency"]
        customer = params.get("customer")
        if customer and not await self._customer_exists(request, customer):
            return _error(
                400, f"No such customer: '{customer}'", code="resource_missing", param="customer"
            )
        session_id = f"cs_test_{secrets.token_hex(24)}"
        now = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "customer": customer,
            "customer_email": params.get("customer_email"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "amount_total": amount,
            "currency": currency,
            "subscription": None,
            "created": now,
            "expires_at": now + 24 * 3600,
            "livemode": False,
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        with self._lock:
            self._state.checkout_sessions[session_id] = session
        return JSONResponse(session)

    async def _get_checkout(self, request: Request) -> Response:
        _, _, early = await self._begin(request)
        if early is not None:
            return early
        with self._lock:
            session = self._state.checkout_sessions.get(request.path_params["sid"])
        if session is None:
            return _error(
                404,
                f"No such checkout.session: '{request.path_params['sid']}'",
                code="resource_missing",
                param="session",
            )
        return JSONResponse(session)

    # --- billing portal -------------------------------------------------------------------
    async def _create_portal(self, request: Request) -> Response:
        params, key, early = await self._begin(request)
        if early is not None:
            return early
        raw = (await request.body()).decode()
        customer = params.get("customer")
        if not customer:
            answer = _error(
                400, "Missing required param: customer.", code="parameter_missing", param="customer"
            )
        elif not await self._customer_exists(request, customer):
            answer = _error(
                400, f"No such customer: '{customer}'", code="resource_missing", param="customer"
            )
        else:
            session_id = _id("bps")
            session = {
                "id": session_id,
                "object": "billing_portal.session",
                "customer": customer,
                "return_url": params.get("return_url"),
                "configuration": "bpc_fake_default",
                "created": int(time.time()),
                "livemode": False,
                "locale": None,
                "url": f"https://billing.stripe.com/p/session/test_{secrets.token_urlsafe(24)}",
            }
            with self._lock:
                self._state.portal_sessions[session_id] = session
            answer = JSONResponse(session)
        return self._finish(request, key, raw, answer)

    # --- customers (only without an upstream) ------------------------------------------------
    async def _create_customer(self, request: Request) -> Response:
        params, key, early = await self._begin(request)
        if early is not None:
            return early
        raw = (await request.body()).decode()
        customer_id = _id("cus")
        customer: dict[str, Any] = {
            "id": customer_id,
            "object": "customer",
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
            "livemode": False,
        }
        with self._lock:
            self._state.customers[customer_id] = customer
        return self._finish(request, key, raw, JSONResponse(customer))

    async def _get_customer(self, request: Request) -> Response:
        _, _, early = await self._begin(request)
        if early is not None:
            return early
        with self._lock:
            customer = self._state.customers.get(request.path_params["cid"])
        if customer is None:
            cid = request.path_params["cid"]
            return _error(404, f"No such customer: '{cid}'", code="resource_missing", param="id")
        return JSONResponse(customer)

    async def _list_customers(self, request: Request) -> Response:
        _, _, early = await self._begin(request)
        if early is not None:
            return early
        with self._lock:
            data = list(self._state.customers.values())
        return JSONResponse(
            {"object": "list", "data": data, "has_more": False, "url": "/v1/customers"}
        )

    # --- everything else ------------------------------------------------------------------------
    async def _forward(self, request: Request) -> Response:
        path = request.url.path
        body = await request.body()
        params = parse_form(body.decode()) if request.method == "POST" else {}
        with self._lock:
            self._state.requests.append(
                RecordedRequest(
                    request.method, path, request.headers.get("idempotency-key"), params
                )
            )
        if self.upstream is None:
            return _error(404, f"Unrecognized request URL ({request.method}: {path}).")
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower()
            in ("authorization", "content-type", "idempotency-key", "stripe-version")
        }
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.request(
                request.method,
                f"{self.upstream}{path}",
                params=list(request.query_params.multi_items()),
                content=body,
                headers=headers,
            )
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
        )


def event(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    """A Stripe event envelope around ``obj`` (what a webhook delivers)."""
    return {
        "id": _id("evt"),
        "object": "event",
        "api_version": "2025-06-30.basil",
        "created": created if created is not None else int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": _id("req"), "idempotency_key": None},
        "type": event_type,
    }
