"""What the provider fakes share: an OAuth 2.0 authorization server, and a thread to run
an ASGI app on a real port.

:class:`FakeOAuth` speaks the authorization-code flow with PKCE as Google and the Microsoft
identity platform document it: ``GET /authorize`` redirects at once (no login page) to the
``redirect_uri`` with ``code`` and ``state``, as the user chosen by ``login_hint`` or
:attr:`FakeOAuth.login_as` (else the first user added); ``POST /token`` checks the client
secret and the PKCE verifier against the recorded S256 challenge, and refreshes access
tokens until the test revokes the refresh token (then ``400 {"error": "invalid_grant"}``).
All state is behind one lock: the tests mutate it from their own thread while the server
thread answers requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT with ``alg: none`` (good enough for a fake's id_token)."""
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}."


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    email: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class Authorization:
    """One visit of ``/authorize``, for tests to inspect."""

    email: str
    params: dict[str, str]
    code: str


@dataclass
class _Access:
    email: str
    expires_at: float


@dataclass
class FakeOAuth:
    """The OAuth half of a provider fake, and its controls."""

    client_id: str
    client_secret: str
    issue_id_token: bool = False  # Google: an id_token with the email
    rotate_refresh_tokens: bool = False  # Microsoft: every refresh returns a new one
    token_lifetime: int = 3600
    login_as: str | None = None  # who "signs in" at /authorize without a login_hint
    lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    users: list[str] = field(default_factory=list, init=False)
    authorizations: list[Authorization] = field(default_factory=list, init=False)
    _codes: dict[str, _Code] = field(default_factory=dict, init=False, repr=False)
    _access: dict[str, _Access] = field(default_factory=dict, init=False, repr=False)
    # refresh token -> email
    _refresh: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _revoked: set[str] = field(default_factory=set, init=False, repr=False)

    # -- controls ------------------------------------------------------------------------

    def add_user(self, email: str) -> None:
        with self.lock:
            if email not in self.users:
                self.users.append(email)

    def issue_tokens(self, email: str) -> tuple[str, str]:
        """``(access_token, refresh_token)`` for a user, without the browser dance."""
        with self.lock:
            self.add_user(email)
            return self._new_access(email), self._new_refresh(email)

    def revoke_refresh_token(self, refresh_token: str) -> None:
        with self.lock:
            self._revoked.add(refresh_token)

    def expire_access_token(self, access_token: str) -> None:
        with self.lock:
            if access_token in self._access:
                self._access[access_token].expires_at = 0.0

    def refresh_tokens_of(self, email: str) -> list[str]:
        with self.lock:
            return [t for t, e in self._refresh.items() if e == email and t not in self._revoked]

    def user_for(self, request: Request) -> str | None:
        """The user of a valid ``Authorization: Bearer`` token, else None."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        with self.lock:
            access = self._access.get(token.strip())
            if access is None or access.expires_at <= time.time():
                return None
            return access.email

    # -- internals -----------------------------------------------------------------------

    def _new_access(self, email: str) -> str:
        token = "at-" + secrets.token_urlsafe(24)
        self._access[token] = _Access(email, time.time() + self.token_lifetime)
        return token

    def _new_refresh(self, email: str) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        self._refresh[token] = email
        return token

    def _token_response(
        self, email: str, refresh_token: str | None, scope: str, issuer: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self._new_access(email),
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": scope,
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        if self.issue_id_token and "openid" in scope.split():
            now = int(time.time())
            body["id_token"] = unsigned_jwt(
                {
                    "iss": issuer,
                    "aud": self.client_id,
                    "sub": hashlib.sha256(email.encode()).hexdigest()[:21],
                    "email": email,
                    "email_verified": True,
                    "iat": now,
                    "exp": now + self.token_lifetime,
                }
            )
        return body

    # -- endpoints -----------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id or not redirect_uri:
            return PlainTextResponse("unknown client or missing redirect_uri", status_code=400)
        state = params.get("state", "")

        def back(**query: str) -> Response:
            separator = "&" if "?" in redirect_uri else "?"
            with_state = {**query, "state": state} if state else query
            return RedirectResponse(f"{redirect_uri}{separator}{urlencode(with_state)}", 302)

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE S256 is required")
        with self.lock:
            email = params.get("login_hint") or self.login_as or (self.users or [""])[0]
            if email not in self.users:
                return back(error="access_denied")
            code = "code-" + secrets.token_urlsafe(16)
            self._codes[code] = _Code(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                challenge=params["code_challenge"],
                email=email,
                scope=params.get("scope", ""),
                expires_at=time.time() + 600,
            )
            self.authorizations.append(Authorization(email, params, code))
        return back(code=code)

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials).decode()
            except ValueError:
                return False
            client_id, _, secret = decoded.partition(":")
        return client_id == self.client_id and secrets.compare_digest(
            secret.encode(), self.client_secret.encode()
        )

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if not self._client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issuer = str(request.base_url).rstrip("/")
        grant = form.get("grant_type")

        def refused(description: str) -> Response:
            body = {"error": "invalid_grant", "error_description": description}
            return JSONResponse(body, status_code=400)

        with self.lock:
            if grant == "authorization_code":
                code = self._codes.get(form.get("code", ""))
                if code is None or code.used or code.expires_at < time.time():
                    return refused("unknown, used or expired code")
                code.used = True
                if form.get("redirect_uri") != code.redirect_uri:
                    return refused("redirect_uri does not match")
                verifier = form.get("code_verifier", "")
                challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
                if not 43 <= len(verifier) <= 128 or challenge != code.challenge:
                    return refused("PKCE verification failed")
                refresh_token = self._new_refresh(code.email)
                return JSONResponse(
                    self._token_response(code.email, refresh_token, code.scope, issuer)
                )
            if grant == "refresh_token":
                old = form.get("refresh_token", "")
                email = self._refresh.get(old)
                if email is None or old in self._revoked:
                    return refused("refresh token revoked or unknown")
                new_refresh: str | None = None
                if self.rotate_refresh_tokens:
                    new_refresh = self._new_refresh(email)
                scope = form.get("scope", "openid email")
                return JSONResponse(self._token_response(email, new_refresh, scope, issuer))
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    def routes(self) -> list[Route]:
        return [
            Route("/authorize", self.authorize, methods=["GET"]),
            Route("/token", self.token, methods=["POST"]),
        ]


def run_in_thread(app: ASGIApp, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Serve ``app`` with uvicorn on a free port of ``host`` in a daemon thread.

    Returns ``(base_url, stop)``; ``stop()`` shuts the server down and waits for it.
    The socket is bound here, before the thread starts, so the port cannot be taken
    between choosing and listening.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"fake-server-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the fake server on port {port} did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://{host}:{port}", stop
