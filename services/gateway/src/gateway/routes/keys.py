from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from contracts import identity as msg
from gateway.deps import TenantCaller
from gateway.errors import documented
from gateway.params import KeyId

router = APIRouter(prefix="/api/v1/keys", tags=["api keys"])


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["Production Key"])


class ApiKey(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class CreatedKey(ApiKey):
    key: str = Field(description="The full API key. It is shown only in this response.")


class KeyList(BaseModel):
    keys: list[ApiKey]


class RevokedKey(BaseModel):
    id: str
    revoked: bool = True


@router.post("", status_code=201, response_model=CreatedKey, responses=documented(400, 401, 409))
async def create_key(body: NewKey, call: TenantCaller) -> CreatedKey:
    """Create an API key. The full key is returned once; only a hash is stored."""
    created = await call(msg.CREATE_API_KEY, name=body.name)
    return CreatedKey(**created.api_key.model_dump(), key=created.key)


@router.get("", response_model=KeyList, responses=documented(401))
async def list_keys(call: TenantCaller) -> KeyList:
    """The tenant's live keys: name, prefix, created and last-used times, never the secret."""
    listed = await call(msg.LIST_API_KEYS)
    return KeyList(keys=[ApiKey(**key.model_dump()) for key in listed.keys])


@router.delete("/{key_id}", response_model=RevokedKey, responses=documented(401, 404))
async def delete_key(key_id: KeyId, call: TenantCaller) -> RevokedKey:
    """Revoke a key; every gateway stops accepting it within seconds."""
    revoked = await call(msg.REVOKE_API_KEY, key_id=key_id[:100])
    return RevokedKey(id=revoked.key_id)
