"""API-key authentication with a short-lived cache that revocations clear at once.

Every gateway replica subscribes (no queue group) to identity's ``api_key_revoked`` and
``tenant_deleted`` events and drops the matching entries; after a reconnect, when events
may have been missed, it drops the whole cache. An entry also expires after
``key_cache_seconds``. Last-used times are gathered in memory and sent to identity in
batches, so a request costs no database write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts import identity as msg
from contracts.rpc import ErrorKind
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

_KEY = re.compile(msg.API_KEY_PATTERN)


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str


def _unauthorized(message: str) -> ServiceError:
    return ServiceError(ErrorKind.UNAUTHORIZED, "unauthorized", message)


class KeyCache:
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        # what was revoked recently: a verification that was in flight during the revocation
        # must not put the key back (ids never come back, so remembering them is safe)
        self._gone: dict[str, float] = {}

    @staticmethod
    def _slot(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    def get(self, key: str) -> Principal | None:
        entry = self._entries.get(self._slot(key))
        if entry is None:
            return None
        principal, expires = entry
        if time.monotonic() >= expires:
            self._entries.pop(self._slot(key), None)
            return None
        return principal

    def put(self, key: str, principal: Principal) -> None:
        now = time.monotonic()
        self._gone = {k: until for k, until in self._gone.items() if until > now}
        if principal.key_id in self._gone or principal.tenant_id in self._gone:
            return
        if self._ttl > 0:
            self._entries[self._slot(key)] = (principal, now + self._ttl)

    def forget(self, *, key_id: str | None = None, tenant_id: str | None = None) -> None:
        remember_until = time.monotonic() + max(self._ttl, 60.0)
        for gone in (key_id, tenant_id):
            if gone:
                self._gone[gone] = remember_until
        for slot, (principal, _) in list(self._entries.items()):
            if principal.key_id == key_id or principal.tenant_id == tenant_id:
                self._entries.pop(slot, None)

    def clear(self) -> None:
        self._entries.clear()


class KeyUsage:
    """Last-used times, flushed to identity in one message per period."""

    def __init__(self, rpc: RpcClient, period: float) -> None:
        self._rpc = rpc
        self._period = period
        self._pending: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def touch(self, key_id: str) -> None:
        self._pending[key_id] = datetime.now(UTC)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="key-usage-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await self._rpc.call(msg.RECORD_KEY_USAGE, msg.RecordKeyUsage(last_used=batch))
        except ServiceError as exc:
            # keep the newest time per key for the next attempt
            for key_id, at in batch.items():
                self._pending[key_id] = max(at, self._pending.get(key_id, at))
            log.warning("could not record API key usage", extra={"error": exc.reply.message})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            await self.flush()


API_KEY_SCHEME = HTTPBearer(
    scheme_name="BearerApiKey",
    bearerFormat="sk_live_...",
    description="An API key: `Authorization: Bearer sk_live_...`.",
    auto_error=False,  # authenticate() answers a missing or bad key itself (401 JSON)
)


async def verify_key(app: Any, authorization: str, request_id: str) -> Principal:
    """The principal of an ``Authorization`` header value (``Bearer sk_live_...``), from the
    gateway's cache of verified keys or identity, whatever the door; raises ServiceError
    ``unauthorized`` for a missing, malformed, unknown or revoked key. Records the use."""
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorized("Missing API key: send 'Authorization: Bearer sk_live_...'.")
    key = key.strip()
    if not _KEY.fullmatch(key):
        raise _unauthorized("Malformed API key.")
    cache: KeyCache = app.state.key_cache
    principal = cache.get(key)
    if principal is None:
        rpc: RpcClient = app.state.rpc
        try:
            verified = await rpc.call(
                msg.VERIFY_API_KEY, msg.VerifyApiKey(key=key, correlation_id=request_id)
            )
        except ServiceError as exc:
            if exc.kind is ErrorKind.UNAUTHORIZED:
                raise _unauthorized("Unknown or revoked API key.") from exc
            raise
        principal = Principal(tenant_id=verified.verified_tenant_id, key_id=verified.key_id)
        cache.put(key, principal)
    app.state.key_usage.touch(principal.key_id)
    return principal


async def authenticate(
    request: Request,
    # declares the scheme in the OpenAPI; the header is read and checked below
    declared: Annotated[HTTPAuthorizationCredentials | None, Depends(API_KEY_SCHEME)] = None,
) -> Principal:
    principal = await verify_key(
        request.app, request.headers.get("authorization", ""), request.state.request_id
    )
    request.state.tenant_id = principal.tenant_id
    await request.app.state.call_quota.admit(principal.tenant_id, request)
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]
