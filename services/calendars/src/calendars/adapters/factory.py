"""Provider clients built from settings and a connection's stored (encrypted) secrets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from calendars.adapters import oauth
from calendars.adapters.caldav_provider import CaldavProvider
from calendars.adapters.google import GoogleCalendar
from calendars.adapters.graph import GraphCalendar
from calendars.adapters.providers import CalendarProvider, ProviderError
from calendars.adapters.secrets import SecretBox
from calendars.adapters.ssrf import (
    parse_allow_list,
    parse_denied_endpoints,
    safe_client,
    shared_ssl_context,
)
from calendars.adapters.tables import connections
from calendars.service_layer.handlers import OAuthGrant, Providers, UowFactory
from calendars.settings import CalendarsSettings


class _Closing:
    """A provider that owns its HTTP client: closing it closes the client."""

    def __init__(self, provider: Any, client: httpx.AsyncClient) -> None:
        self._provider = provider
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def aclose(self) -> None:
        await self._client.aclose()


def build_providers(settings: CalendarsSettings, box: SecretBox, uow: UowFactory) -> Providers:
    allow = [n.strip() for n in settings.allowed_private_networks.split(",") if n.strip()]
    parse_allow_list(allow)  # a malformed network fails at start, not at the first connect
    deny = parse_denied_endpoints(e for e in settings.denied_endpoints.split(",") if e.strip())
    timeout = settings.http_timeout_seconds

    def endpoints(provider: str, redirect_uri: str = "") -> oauth.OAuthEndpoints:
        if provider == "google":
            return oauth.google_endpoints(
                settings.google_client_id,
                settings.google_client_secret.get_secret_value(),
                redirect_uri,
                authorize_url=settings.google_auth_url,
                token_url=settings.google_token_url,
            )
        return oauth.microsoft_endpoints(
            settings.microsoft_client_id,
            settings.microsoft_client_secret.get_secret_value(),
            redirect_uri,
            authorize_url=settings.microsoft_auth_url,
            token_url=settings.microsoft_token_url,
            graph_url=settings.graph_api_url,
        )

    def caldav(
        server_url: str, username: str, password: str, time_zone: str = "UTC"
    ) -> CalendarProvider:
        session = safe_client(
            allow=allow, deny=deny, read_timeout=timeout, total_timeout=timeout * 2
        )
        return CaldavProvider(server_url, username, password, session, timezone=time_zone)

    async def open_connection(row: Any, time_zone: str) -> CalendarProvider:
        """The provider of a stored connection; floating and all-day times are read in
        ``time_zone``, the owner's (Google's all-day events keep their calendar's zone)."""
        if row.provider == "caldav":
            return caldav(row.server_url, row.username, box.open(row.secret), time_zone)
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5.0),
            verify=shared_ssl_context(trust_env=True),
        )
        tokens = oauth.TokenSet(
            access_token=box.open(row.access_token) if row.access_token else "",
            refresh_token=box.open(row.secret),
            expires_at=row.access_expires_at or datetime.now(UTC),
            email=None,
        )

        async def store(fresh: oauth.TokenSet) -> None:
            values: dict[str, Any] = {
                "access_token": box.seal(fresh.access_token),
                "access_expires_at": fresh.expires_at,
            }
            if fresh.refresh_token:
                values["secret"] = box.seal(fresh.refresh_token)
            async with uow() as unit:
                await unit.execute(
                    sa.update(connections).where(connections.c.id == row.id).values(**values)
                )
                await unit.commit()

        provider_tokens = oauth.AccessTokens(
            client, endpoints(row.provider), tokens, on_refresh=store if row.id else None
        )
        adapter: Any
        if row.provider == "google":
            adapter = GoogleCalendar(
                client, settings.google_api_url, access_token_provider=provider_tokens
            )
        else:
            adapter = GraphCalendar(
                client,
                settings.graph_api_url,
                access_token_provider=provider_tokens,
                time_zone=time_zone,
            )
        closing: CalendarProvider = _Closing(adapter, client)
        return closing

    def oauth_url(provider: str, state: str, challenge: str, redirect_uri: str) -> str:
        return oauth.authorization_url(endpoints(provider, redirect_uri), state, challenge)

    async def oauth_exchange(
        provider: str, code: str, verifier: str, redirect_uri: str
    ) -> OAuthGrant:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
            tokens = await oauth.exchange_code(
                client, endpoints(provider, redirect_uri), code, verifier
            )
        if not tokens.refresh_token:
            raise ProviderError("The provider granted no refresh token; connect again.")
        return OAuthGrant(
            refresh_token=tokens.refresh_token,
            access_token=tokens.access_token,
            expires_at=tokens.expires_at,
            email=tokens.email or "",
        )

    return Providers(open_connection, caldav, oauth_url, oauth_exchange)
