"""The request id and the X-RateLimit headers, as plain ASGI middleware.

Starlette's ``@app.middleware("http")`` (BaseHTTPMiddleware) runs every request through an
extra task, memory streams and a second Request object: measured as a large share of the
gateway's CPU per request. These two only need to see the request's headers and to add
headers to the response start.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cortex_runtime.logs import correlated
from gateway.quota import RATE_LIMIT_HEADERS

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class RequestId:
    """Give every request an id (the caller's ``X-Request-ID`` when well formed), make it the
    correlation id of the logs and of every message sent for the request, and return it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, _REQUEST_ID_KEY)
        rid = given if _VALID_REQUEST_ID.match(given) else uuid4().hex
        # request.state is this dict: routes read request.state.request_id
        scope.setdefault("state", {})["request_id"] = rid
        encoded = rid.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k != _REQUEST_ID_KEY]
                headers.append((_REQUEST_ID_KEY, encoded))
                message = {**message, "headers": headers}
            await send(message)

        with correlated(rid):
            await self.app(scope, receive, send_with_id)


class RateLimitHeaders:
    """Put the X-RateLimit headers of an admitted call (left in ``request.state`` by the
    limits and the call quota) on its response, unless the response already has them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra: dict[str, Any] | None = state.get(RATE_LIMIT_HEADERS)
                if extra:
                    headers = list(message.get("headers", ()))
                    present = {k.lower() for k, _ in headers}
                    for name, value in extra.items():
                        key = name.lower().encode("latin-1")
                        if key not in present:
                            headers.append((key, str(value).encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_limits)
