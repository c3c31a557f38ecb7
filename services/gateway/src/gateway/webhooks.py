"""What the webhook routes share: the raw body the signature covers, and the receipt."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel

from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

MAX_WEBHOOK_BYTES = 512 * 1024


class WebhookReceipt(BaseModel):
    status: str
    event_type: str


def event_body(sender: str) -> dict[str, Any]:
    """OpenAPI for a webhook's body: JSON, to be verified byte for byte."""
    return {
        "requestBody": {
            "required": True,
            "description": f"The event exactly as {sender} sent it (signed over these bytes).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }


def required_headers(*names: str, signer: str) -> dict[str, Any]:
    """OpenAPI for the signature headers a webhook needs (the route checks them itself, so
    that a missing one is the same ``invalid_signature`` as a wrong one)."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": True,
                "description": f"Set by {signer}; the signature covers the body.",
                "schema": {"type": "string", "minLength": 1},
            }
            for name in names
        ]
    }


async def raw_payload(request: Request) -> str:
    """The body as received (the service verifies its signature), within the size limit."""
    raw = await request.body()
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise ServiceError(ErrorKind.INVALID, "payload_too_large", "The webhook body is too large.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ServiceError(ErrorKind.INVALID, "invalid_payload", "The body is not UTF-8.") from exc
