"""Dependencies routes share: calling a service on behalf of a request."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from contracts.envelope import Message
from contracts.rpc import Rpc
from cortex_runtime.client import RpcClient
from gateway.auth import Principal, authenticate

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT", bound=Message)


class Caller:
    """Sends typed requests carrying the request id and, when known, the tenant."""

    def __init__(
        self, rpc: RpcClient, request_id: str, tenant_id: str | None, timeout: float | None = None
    ) -> None:
        self._rpc = rpc
        self._request_id = request_id
        self._tenant_id = tenant_id
        self._timeout = timeout

    def with_timeout(self, seconds: float) -> Caller:
        return Caller(self._rpc, self._request_id, self._tenant_id, seconds)

    def for_tenant(self, tenant_id: str) -> Caller:
        """The same request's caller on behalf of ``tenant_id`` (a tenant a reply named)."""
        return Caller(self._rpc, self._request_id, tenant_id, self._timeout)

    @property
    def tenant_id(self) -> str | None:
        return self._tenant_id

    def message(self, rpc: Rpc[ReqT, RepT], **fields: Any) -> ReqT:
        """The request ``rpc`` would send, with this caller's trace and tenant."""
        return rpc.request(correlation_id=self._request_id, tenant_id=self._tenant_id, **fields)

    async def send(self, rpc: Rpc[ReqT, RepT], request: ReqT) -> RepT:
        return await self._rpc.call(rpc, request, timeout=self._timeout)

    async def __call__(self, rpc: Rpc[ReqT, RepT], **fields: Any) -> RepT:
        return await self.send(rpc, self.message(rpc, **fields))


# async: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per request
async def public_caller(request: Request) -> Caller:
    return Caller(request.app.state.rpc, request.state.request_id, None)


async def tenant_caller(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> Caller:
    return Caller(request.app.state.rpc, request.state.request_id, principal.tenant_id)


PublicCaller = Annotated[Caller, Depends(public_caller)]
TenantCaller = Annotated[Caller, Depends(tenant_caller)]
