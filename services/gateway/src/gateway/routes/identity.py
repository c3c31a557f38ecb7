"""Public identity resolution, the activity feed and the Clerk webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from contracts import identity as msg
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway import capabilities
from gateway.capabilities import ActivityFeed, Resolution
from gateway.deps import PublicCaller, TenantCaller
from gateway.errors import documented
from gateway.limits import limited
from gateway.params import CURSOR, Printable
from gateway.webhooks import WebhookReceipt, event_body, raw_payload, required_headers

router = APIRouter()


def public_base(request: Request) -> str:
    configured: str = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


@router.get(
    "/resolve",
    response_model=Resolution,
    responses=documented(400, 404, 429),
    tags=["public"],
    dependencies=[Depends(limited("resolve"))],
)
async def resolve(
    request: Request,
    call: PublicCaller,
    identity: Annotated[
        str,
        Query(
            min_length=3,
            max_length=320,
            examples=["alice@example.com"],
            # an e-mail address; not "format: email" beside Printable's pattern and the
            # lengths: Schemathesis' coverage phase took 20 s to make 18 such strings
            description="An e-mail address (anything else is not found)",
        ),
        Printable,
    ],
) -> Resolution:
    """The public scheduling page of a person, only when they have Open Scheduling on.

    Any other case, an unknown e-mail included, is the same 404 ``identity_not_found``.
    """
    return await capabilities.resolve_identity(call, identity, public_base(request))


@router.get(
    "/api/v1/activity",
    response_model=ActivityFeed,
    responses=documented(400, 401),
    tags=["activity"],
)
async def list_activity(
    call: TenantCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, json_schema_extra=CURSOR), Printable
    ] = None,
) -> ActivityFeed:
    """Recent activity, newest first; pass ``next_cursor`` back as ``cursor`` for more."""
    return await capabilities.list_activity(call, limit, cursor)


@router.post(
    "/api/v1/webhooks/clerk",
    response_model=WebhookReceipt,
    responses=documented(400, 413),
    tags=["webhooks"],
    openapi_extra={
        **event_body("Svix"),
        **required_headers("svix-id", "svix-timestamp", "svix-signature", signer="Svix"),
    },
)
async def clerk_webhook(request: Request, call: PublicCaller) -> WebhookReceipt:
    """Clerk (Svix-signed) user events: created, updated, deleted. Verified by identity."""
    headers = {
        name: request.headers.get(name, "")
        for name in ("svix-id", "svix-timestamp", "svix-signature")
    }
    missing = [name for name, value in headers.items() if not value]
    if missing:
        raise ServiceError(ErrorKind.INVALID, "invalid_signature", f"Missing header {missing[0]}.")
    payload = await raw_payload(request)
    handled = await call(
        msg.RECEIVE_CLERK_WEBHOOK,
        payload=payload,
        svix_id=headers["svix-id"][:200],
        svix_timestamp=headers["svix-timestamp"][:40],
        svix_signature=headers["svix-signature"][:2000],
    )
    return WebhookReceipt(status=handled.status, event_type=handled.event_type)
