"""OAuth 2.0 for Google Calendar and Microsoft Graph, and Bearer-authorised requests.

* The authorization-code flow with PKCE (S256, RFC 7636): :func:`new_pkce`,
  :func:`authorization_url`, :func:`exchange_code`, :func:`refresh`.
* :class:`AccessTokens`: a refreshing access-token provider for the calendar adapters.
* :class:`BearerSession`: what the Google and Graph adapters share: a request with the
  current access token, one retry with a fresh token after a 401, and the mapping of
  transport failures to :class:`ProviderUnavailable`.

Every URL comes from the caller (settings), so the same code talks to the real providers
and to the fakes of ``cortex_dev.fakes``. Error messages never contain a token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from calendars.adapters.providers import CredentialsRejected, ProviderError, ProviderUnavailable

GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
GOOGLE_SCOPES = ("https://www.googleapis.com/auth/calendar", "openid", "email")

MICROSOFT_AUTHORIZE_URL = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
MICROSOFT_TOKEN_URL = "https://login.microsoftonline.com/common/oauth2/v2.0/token"  # noqa: S105
MICROSOFT_SCOPES = ("offline_access", "Calendars.ReadWrite", "User.Read")
GRAPH_URL = "https://graph.microsoft.com/v1.0"

DEFAULT_EXPIRES_IN = 3600  # seconds, when a token response does not say


@dataclass(frozen=True)
class OAuthEndpoints:
    """One OAuth client registration at one provider."""

    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    redirect_uri: str
    provider_name: str = "The calendar provider"  # for messages: "Google", "Microsoft"
    # Extra query parameters of the authorization URL (Google: access_type, prompt).
    authorize_params: tuple[tuple[str, str], ...] = ()
    # Where to read the account's email when the token response has no id_token with one
    # (Microsoft: Graph ``/me``); empty: do not ask.
    userinfo_url: str = ""


def google_endpoints(
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    *,
    authorize_url: str = GOOGLE_AUTHORIZE_URL,
    token_url: str = GOOGLE_TOKEN_URL,
    scopes: tuple[str, ...] = GOOGLE_SCOPES,
) -> OAuthEndpoints:
    """Google: offline access (a refresh token) and consent every time, so that a
    reconnection always yields a new refresh token; the email comes from the id_token."""
    return OAuthEndpoints(
        authorize_url=authorize_url,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        redirect_uri=redirect_uri,
        provider_name="Google",
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
    )


def microsoft_endpoints(
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    *,
    authorize_url: str = MICROSOFT_AUTHORIZE_URL,
    token_url: str = MICROSOFT_TOKEN_URL,
    graph_url: str = GRAPH_URL,
    scopes: tuple[str, ...] = MICROSOFT_SCOPES,
) -> OAuthEndpoints:
    """Microsoft identity platform; the email is Graph ``/me`` (``mail`` or UPN)."""
    return OAuthEndpoints(
        authorize_url=authorize_url,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        redirect_uri=redirect_uri,
        provider_name="Microsoft",
        userinfo_url=f"{graph_url.rstrip('/')}/me",
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier: base64url(sha256(verifier)), no padding."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_pkce() -> tuple[str, str]:
    """A fresh ``(code_verifier, code_challenge)``: 86 unreserved characters, S256."""
    verifier = _b64url(secrets.token_bytes(64))
    return verifier, pkce_challenge(verifier)


def authorization_url(endpoints: OAuthEndpoints, state: str, code_challenge: str) -> str:
    """Where to send the user's browser to grant access."""
    params = {
        "response_type": "code",
        "client_id": endpoints.client_id,
        "redirect_uri": endpoints.redirect_uri,
        "scope": " ".join(endpoints.scopes),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        **dict(endpoints.authorize_params),
    }
    separator = "&" if "?" in endpoints.authorize_url else "?"
    return f"{endpoints.authorize_url}{separator}{urlencode(params)}"


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    email: str | None  # after a refresh: only when the provider sent an id_token with it

    def __repr__(self) -> str:  # keep tokens out of logs and tracebacks
        return f"TokenSet(expires_at={self.expires_at.isoformat()}, email={self.email!r})"


def id_token_email(id_token: str) -> str | None:
    """The ``email`` claim of a JWT, read WITHOUT verifying its signature.

    Only for an id_token received directly from the provider's token endpoint over TLS
    (OpenID Connect Core 3.1.3.7: TLS server validation may be used instead of the
    signature then); never for a token that came from anywhere else.
    """
    parts = id_token.split(".")
    if len(parts) < 2:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    email = claims.get("email") if isinstance(claims, dict) else None
    return email if isinstance(email, str) and email else None


async def _token_request(
    client: httpx.AsyncClient, endpoints: OAuthEndpoints, form: Mapping[str, str], action: str
) -> dict[str, Any]:
    name = endpoints.provider_name
    data = {"client_id": endpoints.client_id, "client_secret": endpoints.client_secret, **form}
    try:
        response = await client.post(
            endpoints.token_url, data=data, headers={"Accept": "application/json"}
        )
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        raise ProviderUnavailable(f"{name} could not be reached to {action}.") from exc
    if response.status_code >= 500:
        raise ProviderUnavailable(f"{name} failed to {action}; try again later.")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"{name} did not answer like an OAuth server.")
    error = body.get("error")
    if response.status_code == 401 or error == "invalid_grant":
        raise CredentialsRejected(f"{name} refused the authorization; connect the calendar again.")
    if response.status_code >= 400 or error:
        code = error if isinstance(error, str) and error.isidentifier() else "unknown error"
        raise ProviderError(f"{name} refused to {action} ({code}).")
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise ProviderUnavailable(f"{name} did not answer like an OAuth server.")
    return body


def _token_set(body: dict[str, Any], refresh_token: str | None) -> TokenSet:
    expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
    try:
        seconds = int(expires_in)
    except (TypeError, ValueError):
        seconds = DEFAULT_EXPIRES_IN
    new_refresh = body.get("refresh_token")
    if isinstance(new_refresh, str) and new_refresh:
        refresh_token = new_refresh
    id_token = body.get("id_token")
    return TokenSet(
        access_token=body["access_token"],
        refresh_token=refresh_token,
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
        email=id_token_email(id_token) if isinstance(id_token, str) else None,
    )


async def _userinfo_email(
    client: httpx.AsyncClient, endpoints: OAuthEndpoints, access_token: str
) -> str | None:
    name = endpoints.provider_name
    try:
        response = await client.get(
            endpoints.userinfo_url, headers={"Authorization": f"Bearer {access_token}"}
        )
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        raise ProviderUnavailable(f"{name} could not be reached to read the account.") from exc
    if response.status_code == 401:
        raise CredentialsRejected(f"{name} refused the new authorization.")
    if response.status_code != 200:
        raise ProviderUnavailable(f"{name} failed to tell which account was connected.")
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"{name} did not answer like an account server.") from exc
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"{name} did not answer like an account server.")
    for key in ("email", "mail", "userPrincipalName"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


async def exchange_code(
    client: httpx.AsyncClient, endpoints: OAuthEndpoints, code: str, code_verifier: str
) -> TokenSet:
    """Trade the authorization code (and the PKCE verifier) for tokens and the email."""
    body = await _token_request(
        client,
        endpoints,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": endpoints.redirect_uri,
            "code_verifier": code_verifier,
        },
        "complete the connection",
    )
    tokens = _token_set(body, None)
    if tokens.email is None and endpoints.userinfo_url:
        tokens.email = await _userinfo_email(client, endpoints, tokens.access_token)
    return tokens


async def refresh(
    client: httpx.AsyncClient, endpoints: OAuthEndpoints, refresh_token: str
) -> TokenSet:
    """A new access token; the old refresh token is kept unless a new one was issued."""
    body = await _token_request(
        client,
        endpoints,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        "renew the authorization",
    )
    return _token_set(body, refresh_token)


class AccessTokens:
    """An ``access_token_provider`` for the adapters: a valid access token, refreshed when
    it expires within ``margin`` or after the provider rejected it (:meth:`invalidate`).

    ``on_refresh`` receives every new :class:`TokenSet` (to store it, encrypted).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        endpoints: OAuthEndpoints,
        tokens: TokenSet,
        *,
        on_refresh: Callable[[TokenSet], Awaitable[None]] | None = None,
        margin: timedelta = timedelta(seconds=60),
    ) -> None:
        self._client = client
        self._endpoints = endpoints
        self._tokens = tokens
        self._on_refresh = on_refresh
        self._margin = margin
        self._rejected: str | None = None
        self._lock = asyncio.Lock()

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    def invalidate(self, access_token: str) -> None:
        """The provider answered 401 to this token: the next call refreshes."""
        self._rejected = access_token

    def _usable(self) -> bool:
        tokens = self._tokens
        return (
            tokens.access_token != self._rejected
            and tokens.expires_at - self._margin > datetime.now(UTC)
        )

    async def __call__(self) -> str:
        if self._usable():
            return self._tokens.access_token
        async with self._lock:
            if self._usable():  # another task refreshed meanwhile
                return self._tokens.access_token
            if not self._tokens.refresh_token:
                raise CredentialsRejected(
                    f"The {self._endpoints.provider_name} authorization expired; "
                    "connect the calendar again."
                )
            fresh = await refresh(self._client, self._endpoints, self._tokens.refresh_token)
            if fresh.email is None:
                fresh = replace(fresh, email=self._tokens.email)
            self._tokens = fresh
            self._rejected = None
            if self._on_refresh is not None:
                await self._on_refresh(fresh)
            return fresh.access_token


class BearerSession:
    """Requests with ``Authorization: Bearer``, shared by the Google and Graph adapters.

    On a 401 the token provider is asked again (after ``invalidate(token)`` when it has
    that method, like :class:`AccessTokens`) and the request is retried once with the new
    token; a second 401, or the same token again, is :class:`CredentialsRejected`.
    Connection failures, timeouts and 5xx/429 answers are :class:`ProviderUnavailable`;
    other answers are returned for the adapter to interpret.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        access_token_provider: Callable[[], Awaitable[str]],
        service_name: str,
    ) -> None:
        self.client = client
        self.service_name = service_name
        self._tokens = access_token_provider

    async def _send(
        self,
        method: str,
        url: str,
        token: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        try:
            return await self.client.request(
                method,
                url,
                params=params,
                json=json_body,
                headers={
                    **(headers or {}),
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json",
                },
            )
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            kind = (
                "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
            )
            raise ProviderUnavailable(f"{self.service_name} {kind}; try again later.") from exc

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        token = await self._tokens()
        response = await self._send(method, url, token, params, json, headers)
        if response.status_code == 401:
            invalidate = getattr(self._tokens, "invalidate", None)
            if callable(invalidate):
                invalidate(token)
            fresh = await self._tokens()
            if fresh != token:
                response = await self._send(method, url, fresh, params, json, headers)
            if response.status_code == 401:
                raise CredentialsRejected(
                    f"{self.service_name} refused the saved authorization; "
                    "connect the calendar again."
                )
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderUnavailable(
                f"{self.service_name} is not answering normally right now; try again later."
            )
        return response

    def json(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON object of a response; anything else is :class:`ProviderUnavailable`."""
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(
                f"{self.service_name} did not answer like a calendar server."
            ) from exc
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"{self.service_name} did not answer like a calendar server.")
        return body

    def check_success_body(self, response: httpx.Response) -> None:
        """A success answer has no body or a JSON one (not, say, a captive portal's page)."""
        if response.content.strip():
            self.json(response)

    def refused(self, response: httpx.Response, action: str) -> ProviderError:
        """The error for an unexpected 4xx answer."""
        if response.status_code == 403:
            return ProviderError(f"{self.service_name} denied access while trying to {action}.")
        if response.status_code == 404:
            return ProviderError(f"{self.service_name} could not find the calendar to {action}.")
        return ProviderError(
            f"{self.service_name} refused to {action} (HTTP {response.status_code})."
        )
