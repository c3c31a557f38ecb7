"""OAuth flows under way: the state start_oauth issued, with its PKCE verifier (sealed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from calendars.adapters.tables import oauth_states
from cortex_runtime.database import UnitOfWork


@dataclass(frozen=True)
class OAuthState:
    state: str
    tenant_id: str
    provider: str
    code_verifier: bytes
    redirect_uri: str
    expires_at: datetime


async def purge_expired(uow: UnitOfWork) -> None:
    await uow.execute(sa.delete(oauth_states).where(oauth_states.c.expires_at < sa.func.now()))


async def add(
    uow: UnitOfWork,
    *,
    state: str,
    tenant_id: str,
    provider: str,
    code_verifier: bytes,
    redirect_uri: str,
    expires_at: datetime,
) -> None:
    await uow.execute(
        sa.insert(oauth_states).values(
            state=state,
            tenant_id=tenant_id,
            provider=provider,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
            expires_at=expires_at,
        )
    )


async def take(uow: UnitOfWork, state: str, provider: str) -> OAuthState | None:
    """The unexpired flow of ``state`` and ``provider``, deleted: a state is used once."""
    row = (
        await uow.execute(
            sa.delete(oauth_states)
            .where(
                oauth_states.c.state == state,
                oauth_states.c.provider == provider,
                oauth_states.c.expires_at > sa.func.now(),
            )
            .returning(
                oauth_states.c.state,
                oauth_states.c.tenant_id,
                oauth_states.c.provider,
                oauth_states.c.code_verifier,
                oauth_states.c.redirect_uri,
                oauth_states.c.expires_at,
            )
        )
    ).first()
    return None if row is None else OAuthState(**row._mapping)


async def delete_of_tenant(uow: UnitOfWork, tenant_id: str) -> None:
    await uow.execute(sa.delete(oauth_states).where(oauth_states.c.tenant_id == tenant_id))
