"""The gateway application: FastAPI with the NATS broker started in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from uuid import uuid4

from contracts import subjects
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient
from cortex_runtime.logs import correlated
from fastapi import FastAPI, Request, Response

from gateway.errors import install_error_handlers
from gateway.routes import health
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    broker = build_broker(settings.nats_url, name=f"cortex-{subjects.GATEWAY}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # connect in the background: while NATS is down the gateway serves /health and
        # answers 503 instead of refusing to start
        connecting = asyncio.create_task(broker.start(), name="nats-connect")
        app.state.rpc = RpcClient(broker, settings.rpc_timeout_seconds)
        try:
            yield
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            await broker.stop()

    app = FastAPI(
        title="Cortex",
        version="0.1.0",
        summary="Scheduling backend for AI agents and the products they live in.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.broker = broker
    install_error_handlers(app)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _VALID_REQUEST_ID.match(given) else uuid4().hex
        request.state.request_id = rid
        with correlated(rid):
            response = await call_next(request)
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    app.include_router(health.router)
    return app
