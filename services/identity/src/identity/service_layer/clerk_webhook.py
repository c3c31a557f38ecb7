"""Clerk's webhook: a user created, updated or deleted there is a tenant here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from contracts import identity as msg
from contracts.formats import InvalidValue, parse_email
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError
from identity.adapters import api_keys, clerk, tenants
from identity.domain import rules
from identity.service_layer.deps import IdentityDeps
from identity.service_layer.signup import provision_in
from identity.service_layer.tenancy import conflict, invalid
from identity.service_layer.tenant_settings import apply_settings

CLERK_CONSUMER = "clerk_webhook"

ClerkData = dict[str, Any]
"""A Clerk event's ``data``: JSON as Clerk sends it, read with ``.get``."""


async def receive_clerk_webhook(
    cmd: msg.ReceiveClerkWebhook, deps: IdentityDeps
) -> msg.ClerkWebhookHandled:
    try:
        clerk.verify(
            deps.clerk_webhook_secret,
            cmd.payload,
            svix_id=cmd.svix_id,
            timestamp=cmd.svix_timestamp,
            signature=cmd.svix_signature,
        )
    except clerk.InvalidSignature as exc:
        raise ServiceError(
            ErrorKind.INVALID,
            "invalid_signature",
            "The webhook signature is invalid or its timestamp is more than 5 minutes off.",
        ) from exc
    event_type, data = _clerk_event(cmd.payload)
    try:
        async with deps.uow() as uow:
            if not await uow.first_delivery(CLERK_CONSUMER, cmd.svix_id):
                return msg.ClerkWebhookHandled(status="duplicate", event_type=event_type)
            tenant_id: str | None = None
            status: Literal["processed", "ignored"] = "processed"
            if event_type == "user.created":
                provisioned = await provision_in(uow, _clerk_user(cmd, data))
                tenant_id = provisioned.settings.tenant_id
            elif event_type == "user.updated":
                tenant_id = await _clerk_user_updated(uow, cmd, data)
            elif event_type == "user.deleted":
                tenant_id = await _clerk_user_deleted(uow, cmd, str(data.get("id", "")))
            else:
                status = "ignored"
            await uow.commit()
    except tenants.Taken as taken:
        raise conflict(taken) from taken
    return msg.ClerkWebhookHandled(
        status=status, event_type=event_type, affected_tenant_id=tenant_id
    )


def _clerk_event(payload: str) -> tuple[str, ClerkData]:
    """``(type, data)`` of a Clerk event's JSON body."""
    try:
        event = json.loads(payload)
        event_type = str(event["type"])
        data: ClerkData = event["data"]
        if not isinstance(data, dict):
            raise TypeError("data is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_payload", "The webhook body is not a Clerk event."
        ) from exc
    return event_type, data


def _clerk_primary_email(data: Mapping[str, Any]) -> str:
    addresses = data.get("email_addresses") or []
    primary = data.get("primary_email_address_id")
    for address in addresses:
        if address.get("id") == primary:
            return str(address.get("email_address", ""))
    return str(addresses[0].get("email_address", "")) if addresses else ""


def _clerk_name(data: Mapping[str, Any]) -> str:
    parts = [data.get("first_name") or "", data.get("last_name") or ""]
    return " ".join(p for p in parts if p) or str(data.get("username") or "")


def _clerk_user(cmd: msg.ReceiveClerkWebhook, data: Mapping[str, Any]) -> msg.ProvisionTenant:
    metadata = data.get("public_metadata") or {}
    user_type = metadata.get("user_type") if isinstance(metadata, dict) else None
    return msg.ProvisionTenant(
        **cmd.caused(),
        email=_clerk_primary_email(data),
        display_name=_clerk_name(data)[:200],
        external_id=str(data.get("id", ""))[:200] or None,
        user_type=msg.UserType(user_type)
        if user_type in ("individual", "developer")
        else "individual",
    )


async def _clerk_user_updated(
    uow: UnitOfWork, cmd: msg.ReceiveClerkWebhook, data: Mapping[str, Any]
) -> str | None:
    row = await tenants.live_by_external_id(uow, str(data.get("id", "")))
    if row is None:  # updated before created arrived: create it now
        return (await provision_in(uow, _clerk_user(cmd, data))).settings.tenant_id
    changes: dict[str, object] = {}
    email = _clerk_primary_email(data)
    if email and email != row.email:
        try:
            changes["email"] = parse_email(email)
        except InvalidValue as refused:
            raise invalid(refused) from refused
    name = rules.clean_display_name(_clerk_name(data))
    if name and name != row.display_name:
        changes["display_name"] = name
    if changes:
        await apply_settings(uow, cmd, row.id, changes)
    return str(row.id)


async def _clerk_user_deleted(
    uow: UnitOfWork, cmd: msg.ReceiveClerkWebhook, external_id: str
) -> str | None:
    deleted = await tenants.delete_by_external_id(uow, external_id)
    if deleted is None:
        return None
    for key in await api_keys.revoke_all(uow, deleted.id):
        await uow.add_event(
            msg.API_KEY_REVOKED.subject,
            msg.ApiKeyRevoked(**cmd.caused(tenant_id=deleted.id), key_id=key.id, prefix=key.prefix),
        )
    await uow.add_event(
        msg.TENANT_DELETED.subject,
        msg.TenantDeleted(
            **cmd.caused(tenant_id=deleted.id),
            deleted_tenant_id=deleted.id,
            settings_version=deleted.version,
        ),
    )
    return str(deleted.id)
