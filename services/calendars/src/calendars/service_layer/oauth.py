"""Connecting Google and Outlook calendars: OAuth's authorization code flow with PKCE."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

from calendars.adapters import oauth_state_repo
from calendars.adapters.connection_repo import Connection
from calendars.adapters.oauth import new_pkce
from calendars.adapters.providers import CredentialsRejected, ProviderError
from calendars.domain.owner import DEFAULT_ZONE
from calendars.service_layer.connecting import store_connection, sync_and_describe
from calendars.service_layer.deps import CalendarsDeps, parse_provider
from contracts import calendars as msg
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError, require_tenant


async def start_oauth(cmd: msg.StartOAuth, deps: CalendarsDeps) -> msg.OAuthStarted:
    tenant = require_tenant(cmd)
    provider = parse_provider(cmd.provider)
    if provider is msg.Provider.CALDAV:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_provider", "CalDAV connects with a username and password."
        )
    verifier, challenge = new_pkce()
    state = secrets.token_urlsafe(24)
    async with deps.uow() as uow:
        await oauth_state_repo.purge_expired(uow)
        await oauth_state_repo.add(
            uow,
            state=state,
            tenant_id=tenant,
            provider=provider.value,
            code_verifier=deps.box.seal(verifier),
            redirect_uri=cmd.redirect_uri,
            expires_at=datetime.now(UTC) + timedelta(minutes=10),
        )
        await uow.commit()
    url = deps.providers.oauth_url(provider.value, state, challenge, cmd.redirect_uri)
    return msg.OAuthStarted(authorization_url=url, state=state)


_OAUTH_STATE = re.compile(r"[A-Za-z0-9_-]{1,200}")
"""What start_oauth issues (``secrets.token_urlsafe``); anything else is unknown."""


def _unknown_state() -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID, "invalid_state", "The authorization state is unknown or expired."
    )


async def complete_oauth(cmd: msg.CompleteOAuth, deps: CalendarsDeps) -> msg.ConnectionReply:
    provider = parse_provider(cmd.provider)
    if not _OAUTH_STATE.fullmatch(cmd.state):  # e.g. a NUL byte, which PostgreSQL refuses
        raise _unknown_state()
    async with deps.uow() as uow:
        flow = await oauth_state_repo.take(uow, cmd.state, provider.value)
        await uow.commit()
    if flow is None:
        raise _unknown_state()
    try:
        grant = await deps.providers.oauth_exchange(
            provider.value, cmd.code, deps.box.open(flow.code_verifier), flow.redirect_uri
        )
    except CredentialsRejected as exc:
        raise ServiceError(ErrorKind.INVALID, "authorization_rejected", str(exc)) from exc
    except ProviderError as exc:
        raise ServiceError(ErrorKind.UPSTREAM, "provider_unreachable", str(exc)) from exc
    cause = msg.CompleteOAuth(
        **cmd.caused(tenant_id=flow.tenant_id), provider=cmd.provider, code="-", state="-"
    )
    unsaved = Connection(  # the connection as it will be stored, to list its calendars first
        id="",
        tenant_id=flow.tenant_id,
        provider=provider.value,
        email=grant.email,
        server_url=None,
        username=None,
        secret=deps.box.seal(grant.refresh_token),
        access_token=deps.box.seal(grant.access_token),
        access_expires_at=grant.expires_at,
        status=msg.ConnectionStatus.SYNCING.value,
        status_reason=None,
        last_synced_at=None,
    )
    client = await deps.providers.open_connection(unsaved, DEFAULT_ZONE)
    try:
        remote = await client.list_calendars()
    except ProviderError as exc:
        raise ServiceError(ErrorKind.UPSTREAM, "provider_unreachable", str(exc)) from exc
    finally:
        await client.aclose()
    connection_id = await store_connection(
        deps,
        cause,
        provider,
        email=grant.email,
        secret=grant.refresh_token,
        access_token=grant.access_token,
        access_expires_at=grant.expires_at,
        remote=remote,
    )
    return await sync_and_describe(deps, flow.tenant_id, connection_id)
