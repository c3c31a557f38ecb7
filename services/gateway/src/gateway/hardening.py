"""What every request meets first: body limits, strict JSON, CORS, security headers."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_PREFIXES = ("/public/", "/resolve", "/api/v1/toon/", "/health", "/ready")
_WRITES = {"POST", "PUT", "PATCH"}
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-site"),
]


def _error(status: int, message: str, code: str) -> tuple[Message, Message]:
    body = json.dumps({"error": message, "code": code}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class Hardening:
    """ASGI middleware.

    * A body larger than ``max_body_bytes`` is refused with 413 (by Content-Length, or while
      streaming when there is none).
    * A write (POST/PUT/PATCH) with a body must be ``application/json``: 415 otherwise.
    * CORS: public routes are open to every origin; authenticated routes only to the
      configured origins (none by default).
    * Security headers on every response; ``Cache-Control: no-store`` on authenticated ones.
    """

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, cors_origins: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.cors_origins = frozenset(cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        method = scope["method"]
        path: str = scope["path"]
        public = path.startswith(PUBLIC_PREFIXES)
        origin = headers.get(b"origin", b"").decode("latin-1")
        allowed_origin = "*" if public else (origin if origin in self.cors_origins else "")

        if method == "OPTIONS" and origin and headers.get(b"access-control-request-method"):
            await self._preflight(send, allowed_origin)
            return

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._send(
                send,
                *_error(
                    413, f"The body is larger than {self.max_body} bytes.", "payload_too_large"
                ),
            )
            return
        if method in _WRITES and (length not in (None, b"0") or headers.get(b"transfer-encoding")):
            content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if content_type != b"application/json":
                await self._send(
                    send,
                    *_error(415, "Send the body as application/json.", "unsupported_media_type"),
                )
                return

        if length is None and method in _WRITES:
            # no Content-Length (chunked): read it here, within the limit, then replay it
            body, complete = await self._read_limited(receive)
            if not complete:
                await self._send(
                    send,
                    *_error(
                        413, f"The body is larger than {self.max_body} bytes.", "payload_too_large"
                    ),
                )
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = replay

        async def decorated_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(_SECURITY_HEADERS)
                if not public:
                    extra.append((b"cache-control", b"no-store"))
                if allowed_origin:
                    extra.append((b"access-control-allow-origin", allowed_origin.encode()))
                    extra.append((b"vary", b"Origin"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, decorated_send)

    async def _read_limited(self, receive: Receive) -> tuple[bytes, bool]:
        """The whole body if it fits in the limit: (body, True); else (b"", False)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", False
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks), True

    async def _preflight(self, send: Send, allowed_origin: str) -> None:
        headers = [(b"content-length", b"0")]
        if allowed_origin:
            headers += [
                (b"access-control-allow-origin", allowed_origin.encode()),
                (b"access-control-allow-methods", b"GET, POST, PUT, DELETE, OPTIONS"),
                (
                    b"access-control-allow-headers",
                    b"Authorization, Content-Type, Idempotency-Key, Accept",
                ),
                (b"access-control-max-age", b"600"),
                (b"vary", b"Origin"),
            ]
        await send(
            {
                "type": "http.response.start",
                "status": 204 if allowed_origin else 403,
                "headers": headers,
            }
        )
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _send(send: Send, start: Message, body: Message) -> None:
        await send(start)
        await send(body)
