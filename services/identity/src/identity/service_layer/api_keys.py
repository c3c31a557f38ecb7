"""API keys: create, list, revoke, verify, and the last-used times the gateways report."""

from __future__ import annotations

from contracts import identity as msg
from contracts.envelope import Message
from contracts.formats import IdPrefix, InvalidValue, new_id
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError, require_tenant
from identity.adapters import api_keys
from identity.adapters.tables import ApiKeyRow
from identity.domain import keys
from identity.service_layer.deps import IdentityDeps
from identity.service_layer.tenancy import invalid, live_tenant

MAX_LIVE_KEYS = 100

INVALID_KEY = ServiceError(
    ErrorKind.UNAUTHORIZED,
    "invalid_api_key",
    "The API key is missing, malformed, unknown or revoked.",
)


def key_info(row: ApiKeyRow) -> msg.ApiKeyInfo:
    return msg.ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


async def add_key(uow: UnitOfWork, cause: Message, tenant_id: str, name: str) -> msg.ApiKeyCreated:
    """A new key for the tenant in ``uow``, and its event; the only time its secret is seen."""
    try:
        clean = keys.check_name(name)
    except InvalidValue as refused:
        raise invalid(refused) from refused
    new = keys.generate()
    row = await api_keys.insert(
        uow,
        key_id=new_id(IdPrefix.API_KEY),
        tenant_id=tenant_id,
        name=clean,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
    )
    info = key_info(row)
    await uow.add_event(
        msg.API_KEY_CREATED.subject,
        msg.ApiKeyCreatedEvent(
            **cause.caused(tenant_id=tenant_id), key_id=info.id, name=info.name, prefix=info.prefix
        ),
    )
    return msg.ApiKeyCreated(api_key=info, key=new.full)


async def create_api_key(cmd: msg.CreateApiKey, deps: IdentityDeps) -> msg.ApiKeyCreated:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        tenant = await live_tenant(uow, tenant_id, lock=True)
        if await api_keys.count_live(uow, tenant.id) >= MAX_LIVE_KEYS:
            raise ServiceError(
                ErrorKind.CONFLICT, "too_many_keys", f"A tenant may hold {MAX_LIVE_KEYS} live keys."
            )
        created = await add_key(uow, cmd, tenant.id, cmd.name)
        await uow.commit()
    return created


async def list_api_keys(cmd: msg.ListApiKeys, deps: IdentityDeps) -> msg.ApiKeyList:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        tenant = await live_tenant(uow, tenant_id)
        rows = await api_keys.list_live(uow, tenant.id)
    return msg.ApiKeyList(keys=[key_info(row) for row in rows])


async def revoke_api_key(cmd: msg.RevokeApiKey, deps: IdentityDeps) -> msg.ApiKeyRevokedReply:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        revoked = await api_keys.revoke(uow, cmd.key_id, tenant_id)
        if revoked is None:
            raise ServiceError(ErrorKind.NOT_FOUND, "key_not_found", "No such API key.")
        await uow.add_event(
            msg.API_KEY_REVOKED.subject,
            msg.ApiKeyRevoked(**cmd.caused(), key_id=revoked.id, prefix=revoked.prefix),
        )
        await uow.commit()
    return msg.ApiKeyRevokedReply(key_id=revoked.id)


async def verify_api_key(cmd: msg.VerifyApiKey, deps: IdentityDeps) -> msg.ApiKeyVerified:
    parsed = keys.parse(cmd.key)
    if parsed is None:
        raise INVALID_KEY
    prefix, secret = parsed
    async with deps.uow() as uow:
        credential = await api_keys.live_credential(uow, prefix)
    # an unknown prefix costs the same digest and comparison as a known one
    stored = credential.secret_hash if credential is not None else keys.digest("no such key")
    if not keys.matches(secret, stored) or credential is None:
        raise INVALID_KEY
    return msg.ApiKeyVerified(key_id=credential.id, verified_tenant_id=credential.tenant_id)


async def record_key_usage(cmd: msg.RecordKeyUsage, deps: IdentityDeps) -> msg.UsageRecorded:
    if not cmd.last_used:
        return msg.UsageRecorded(updated=0)
    async with deps.uow() as uow:
        updated = await api_keys.record_usage(uow, cmd.last_used)
        await uow.commit()
    return msg.UsageRecorded(updated=updated)
