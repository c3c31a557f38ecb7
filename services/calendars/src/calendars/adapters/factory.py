"""Provider clients built from settings and a connection's stored (encrypted) secrets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from calendars.adapters import connection_repo, oauth
from calendars.adapters.caldav_provider import CaldavProvider
from calendars.adapters.connection_repo import Connection
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
from calendars.domain.remote import OAuthGrant
from calendars.settings import CalendarsSettings
from cortex_runtime.database import UnitOfWork


class _Closing:
    """A provider that owns its HTTP client: closing it closes the client."""

    def __init__(self, provider: Any, client: httpx.AsyncClient) -> None:
        self._provider = provider
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def aclose(self) -> None:
        await self._client.aclose()


class ProviderClients:
    """Provider clients as the service layer asks for them (its ``Providers``), built from
    settings: CalDAV behind the SSRF guard, Google and Graph with tokens refreshed (and the
    fresh ones stored) as needed."""

    def __init__(
        self, settings: CalendarsSettings, box: SecretBox, uow: Callable[[], UnitOfWork]
    ) -> None:
        allow = [n.strip() for n in settings.allowed_private_networks.split(",") if n.strip()]
        parse_allow_list(allow)  # a malformed network fails at start, not at the first connect
        self._allow = allow
        self._deny = parse_denied_endpoints(
            e for e in settings.denied_endpoints.split(",") if e.strip()
        )
        self._timeout = settings.http_timeout_seconds
        self._settings = settings
        self._box = box
        self._uow = uow

    def _endpoints(self, provider: str, redirect_uri: str = "") -> oauth.OAuthEndpoints:
        settings = self._settings
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
        self, server_url: str, username: str, password: str, time_zone: str = "UTC"
    ) -> CalendarProvider:
        session = safe_client(
            allow=self._allow,
            deny=self._deny,
            read_timeout=self._timeout,
            total_timeout=self._timeout * 2,
        )
        return CaldavProvider(server_url, username, password, session, timezone=time_zone)

    async def open_connection(self, row: Connection, time_zone: str) -> CalendarProvider:
        """The provider of a stored connection; floating and all-day times are read in
        ``time_zone``, the owner's (Google's all-day events keep their calendar's zone)."""
        box = self._box
        if row.provider == "caldav":
            return self.caldav(
                row.server_url or "", row.username or "", box.open(row.secret), time_zone
            )
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout, connect=5.0),
            verify=shared_ssl_context(trust_env=True),
        )
        tokens = oauth.TokenSet(
            access_token=box.open(row.access_token) if row.access_token else "",
            refresh_token=box.open(row.secret),
            expires_at=row.access_expires_at or datetime.now(UTC),
            email=None,
        )

        async def store(fresh: oauth.TokenSet) -> None:
            async with self._uow() as unit:
                await connection_repo.store_tokens(
                    unit,
                    row.id,
                    box.seal(fresh.access_token),
                    fresh.expires_at,
                    box.seal(fresh.refresh_token) if fresh.refresh_token else None,
                )
                await unit.commit()

        provider_tokens = oauth.AccessTokens(
            client, self._endpoints(row.provider), tokens, on_refresh=store if row.id else None
        )
        adapter: Any
        if row.provider == "google":
            adapter = GoogleCalendar(
                client, self._settings.google_api_url, access_token_provider=provider_tokens
            )
        else:
            adapter = GraphCalendar(
                client,
                self._settings.graph_api_url,
                access_token_provider=provider_tokens,
                time_zone=time_zone,
            )
        closing: CalendarProvider = _Closing(adapter, client)
        return closing

    def oauth_url(self, provider: str, state: str, challenge: str, redirect_uri: str) -> str:
        return oauth.authorization_url(self._endpoints(provider, redirect_uri), state, challenge)

    async def oauth_exchange(
        self, provider: str, code: str, verifier: str, redirect_uri: str
    ) -> OAuthGrant:
        timeout = httpx.Timeout(self._timeout, connect=5.0)
        async with httpx.AsyncClient(timeout=timeout) as client:
            tokens = await oauth.exchange_code(
                client, self._endpoints(provider, redirect_uri), code, verifier
            )
        if not tokens.refresh_token:
            raise ProviderError("The provider granted no refresh token; connect again.")
        return OAuthGrant(
            refresh_token=tokens.refresh_token,
            access_token=tokens.access_token,
            expires_at=tokens.expires_at,
            email=tokens.email or "",
        )


def build_providers(
    settings: CalendarsSettings, box: SecretBox, uow: Callable[[], UnitOfWork]
) -> ProviderClients:
    return ProviderClients(settings, box, uow)
