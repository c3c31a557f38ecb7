"""The gateway application: FastAPI with the NATS broker started in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from fastapi import FastAPI

from contracts import identity, subjects
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient
from gateway import a2a_pages
from gateway.auth import KeyCache, KeyUsage
from gateway.errors import install_error_handlers, install_openapi
from gateway.hardening import Hardening
from gateway.limits import Limit, RateLimiter
from gateway.mcp_server import mount_mcp
from gateway.middleware import REQUEST_ID_HEADER, RateLimitHeaders, RequestId
from gateway.oauth_binding import OAuthBinding
from gateway.quota import EXEMPT_PREFIXES, CallQuota
from gateway.routes import (
    availability,
    bookings,
    calendars,
    callers_policies,
    dashboard,
    health,
    keys,
    manage,
    toon,
)
from gateway.routes import billing as billing_routes
from gateway.routes import identity as identity_routes
from gateway.routes import settings as settings_routes
from gateway.settings import GatewaySettings
from gateway.toon import ToonResponses

log = logging.getLogger(__name__)

__all__ = ["REQUEST_ID_HEADER", "create_app"]


# the REST routes, in the order the OpenAPI document lists them
ROUTERS: Final = (
    health.router,
    identity_routes.router,
    keys.router,
    settings_routes.router,
    calendars.router,
    availability.public,
    bookings.public,
    bookings.owner,
    manage.router,
    availability.owner,
    callers_policies.router,
    toon.router,
    billing_routes.router,
    dashboard.router,
)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    key_cache = KeyCache(settings.key_cache_seconds)

    async def forget_all_keys() -> None:
        # revocations may have been missed while disconnected
        key_cache.clear()
        call_quota.forget()

    broker = build_broker(
        settings.nats_url, name=f"cortex-{subjects.GATEWAY}", reconnected_cb=forget_all_keys
    )
    call_quota = CallQuota(broker)
    call_quota.subscribe()  # plan_changed: every replica drops the tenant's cached limit

    # every replica hears every revocation: plain subscriptions, no queue group
    @broker.subscriber(identity.API_KEY_REVOKED.subject, title="gateway: forget revoked key")
    async def on_key_revoked(event: identity.ApiKeyRevoked) -> None:
        key_cache.forget(key_id=event.key_id)

    @broker.subscriber(identity.TENANT_DELETED.subject, title="gateway: forget deleted tenant")
    async def on_tenant_deleted(event: identity.TenantDeleted) -> None:
        key_cache.forget(tenant_id=event.deleted_tenant_id)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # connect in the background: while NATS is down the gateway serves /health and
        # answers 503 instead of refusing to start
        connecting = asyncio.create_task(broker.start(), name="nats-connect")
        app.state.rpc = RpcClient(broker, settings.rpc_timeout_seconds)
        app.state.key_usage = KeyUsage(app.state.rpc, settings.key_usage_flush_seconds)
        app.state.key_usage.start()
        try:
            async with mcp.session_manager.run():
                yield
        finally:
            await app.state.key_usage.stop()
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
    app.state.key_cache = key_cache
    app.state.call_quota = call_quota
    app.state.oauth_binding = OAuthBinding(settings.oauth_binding_secret.get_secret_value())
    app.state.rate_limiter = RateLimiter(
        broker, settings.trusted_proxies, ipv6_prefix=settings.rate_ipv6_prefix
    )
    app.state.rate_limits = {
        "availability": Limit("availability", settings.rate_availability_per_minute, 60),
        "book": Limit("book", settings.rate_book_per_hour, 3600, fail_open=False),
        "resolve": Limit("resolve", settings.rate_resolve_per_minute, 60),
        "toon": Limit("toon", settings.rate_toon_per_minute, 60),
    }
    app.add_middleware(RateLimitHeaders)
    install_error_handlers(app)
    install_openapi(app, daily_limit_exempt=EXEMPT_PREFIXES)
    origins = tuple(o.strip() for o in settings.cors_origins.split(",") if o.strip())
    app.add_middleware(ToonResponses)
    app.add_middleware(Hardening, max_body_bytes=settings.max_body_bytes, cors_origins=origins)

    app.add_middleware(RequestId)

    for router in ROUTERS:
        app.include_router(router)
    a2a_pages.mount(app)  # A2A on every public page
    mcp = mount_mcp(app, settings)  # its session manager runs in the lifespan
    return app
