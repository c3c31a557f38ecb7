"""What only the booking end-to-end modules share, on top of tests/e2e/helpers.py: the
bookings and quota reservations in the databases, the gateway's hand-over of an unanswered
request, and a CalDAV proxy that can fail on cue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx

from contracts import booking as booking_msg
from contracts import gateway as gateway_msg
from contracts import subjects
from cortex_runtime.broker import build_broker, ensure_stream, event_stream, publish_raw
from tests.e2e.helpers import System


def booking_rows(system: System, booking_id: str) -> list[asyncpg.Record]:
    return system.rows("booking", "SELECT * FROM bookings WHERE id = $1", booking_id)


def booking_row(system: System, booking_id: str) -> asyncpg.Record | None:
    rows = booking_rows(system, booking_id)
    return rows[0] if rows else None


def reservations(system: System, booking_id: str) -> list[asyncpg.Record]:
    """Billing's quota reservations for the booking."""
    return system.rows(
        "billing", "SELECT * FROM quota_reservations WHERE booking_id = $1", booking_id
    )


def reservation(system: System, booking_id: str) -> asyncpg.Record | None:
    rows = reservations(system, booking_id)
    return rows[0] if rows else None


def hand_over(system: System, command: booking_msg.CreateBooking) -> None:
    """What the gateway does when booking did not answer in time."""

    async def go() -> None:
        broker = build_broker(system.stack.nats_url, "test-handover")
        async with broker:
            await broker.connect()
            await ensure_stream(broker, event_stream(subjects.GATEWAY))
            await publish_raw(
                broker,
                gateway_msg.BOOKING_UNANSWERED.subject,
                command.model_dump_json().encode(),
                {"Nats-Msg-Id": command.booking_id},
            )

    asyncio.run(go())


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class CaldavProxy:
    """A CalDAV server address that forwards every request to Radicale; a test sets
    :attr:`on_write` to act when an event is written (``PUT <uid>.ics``): return a status
    to answer instead of Radicale, or None to forward it."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.on_write: Callable[[str], int | None] | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                hook = proxy.on_write
                if self.command == "PUT" and self.path.endswith(".ics") and hook is not None:
                    status = hook(self.path)
                    if status is not None:
                        self.send_response(status)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}
                }
                answer = httpx.request(
                    self.command, f"{proxy.target}{self.path}", content=body, headers=headers,
                    timeout=30,
                )  # fmt: skip
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_DELETE = do_POST = do_HEAD = do_OPTIONS = _forward
            do_PROPFIND = do_PROPPATCH = do_REPORT = do_MKCOL = do_MOVE = do_COPY = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
