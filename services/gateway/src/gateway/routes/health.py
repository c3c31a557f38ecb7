from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from contracts.system import PINGS, Ping, Pong
from cortex_runtime.broker import is_connected
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError
from gateway.errors import ErrorBody

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class ServiceState(BaseModel):
    ready: bool
    instance: str | None = None
    reason: str | None = None


class Readiness(BaseModel):
    status: str
    nats: bool
    services: dict[str, ServiceState]
    missing: list[str]


def rpc_client(request: Request) -> RpcClient:
    client: RpcClient = request.app.state.rpc
    return client


@router.get("/health", response_model=Health, summary="Liveness of the gateway")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": ErrorBody, "description": "NATS or a service is not ready"}},
    summary="Readiness: NATS and every service answer their ping",
)
async def ready(request: Request, rpc: Annotated[RpcClient, Depends(rpc_client)]) -> JSONResponse:
    timeout = request.app.state.settings.ready_timeout_seconds
    nats_up = is_connected(request.app.state.broker)

    async def probe(name: str) -> ServiceState:
        if not nats_up:
            return ServiceState(ready=False, reason="NATS is not connected")
        try:
            pong: Pong = await rpc.call(PINGS[name], Ping(), timeout=timeout)
        except ServiceError as exc:
            return ServiceState(ready=False, reason=exc.reply.message)
        if not pong.database:
            return ServiceState(ready=False, instance=pong.instance, reason="database unreachable")
        return ServiceState(ready=True, instance=pong.instance)

    states = dict(zip(PINGS, await asyncio.gather(*(probe(n) for n in PINGS)), strict=True))
    missing = [name for name, state in states.items() if not state.ready]
    if not nats_up:
        missing.insert(0, "nats")
    body = Readiness(
        status="ready" if not missing else "not_ready",
        nats=nats_up,
        services=states,
        missing=missing,
    )
    if missing:
        payload = {
            "error": f"Not ready: {', '.join(missing)}.",
            "code": "not_ready",
            **body.model_dump(),
        }
        return JSONResponse(payload, status_code=503)
    return JSONResponse(body.model_dump())
