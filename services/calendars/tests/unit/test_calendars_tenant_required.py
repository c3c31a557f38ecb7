"""A command acting for the caller's tenant that names none is refused before anything is
read, written or asked of a provider: ``unauthorized``, ``tenant_required`` (the runtime's
one answer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calendars.adapters.secrets import SecretBox
from calendars.service_layer import booking_events, connecting, connections, free_busy, oauth, sync
from calendars.service_layer.deps import CalendarsDeps
from contracts import calendars as msg
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError


def _no_database() -> UnitOfWork:
    raise AssertionError("a command without a tenant reached the database")


class _NoProviders:
    async def open_connection(self, row: Any, time_zone: str, /) -> Any:
        raise AssertionError("a command without a tenant reached a provider")

    def caldav(self, server_url: str, username: str, password: str, /) -> Any:
        raise AssertionError("a command without a tenant reached a provider")

    def oauth_url(self, provider: str, state: str, challenge: str, redirect_uri: str, /) -> str:
        raise AssertionError("a command without a tenant reached a provider")

    async def oauth_exchange(
        self, provider: str, code: str, verifier: str, redirect_uri: str, /
    ) -> Any:
        raise AssertionError("a command without a tenant reached a provider")


def _deps() -> CalendarsDeps:
    return CalendarsDeps(
        uow=_no_database,
        read=_no_database,
        box=SecretBox("Y29ydGV4LWRldmVsb3BtZW50LWtleS0wMDAwMDAwMDA="),
        providers=_NoProviders(),
        horizon_days=30,
        sync_interval=timedelta(minutes=5),
    )


NOW = datetime(2030, 1, 7, 9, tzinfo=UTC)
CASES: list[tuple[Callable[[Any, CalendarsDeps], Awaitable[Any]], Any]] = [
    (
        connecting.connect_caldav,
        msg.ConnectCaldav(server_url="https://dav.example.com/", username="u", password="p"),
    ),
    (oauth.start_oauth, msg.StartOAuth(provider="google", redirect_uri="https://x.example/cb")),
    (connections.list_connections, msg.ListConnections()),
    (connections.update_calendar, msg.UpdateCalendar(calendar_id="cal_1", receives_bookings=True)),
    (connections.disconnect, msg.Disconnect(provider="caldav")),
    (sync.sync_now, msg.SyncNow()),
    (free_busy.free_busy, msg.GetFreeBusy(start=NOW, end=NOW + timedelta(hours=1))),
    (
        booking_events.write_booking_event,
        msg.WriteBookingEvent(
            booking_id="bk_1", start=NOW, end=NOW + timedelta(hours=1), summary="Call"
        ),
    ),
    (booking_events.delete_booking_event, msg.DeleteBookingEvent(booking_id="bk_1")),
    (
        booking_events.move_booking_event,
        msg.MoveBookingEvent(booking_id="bk_1", start=NOW, end=NOW + timedelta(hours=1)),
    ),
]


@pytest.mark.parametrize(("handler", "cmd"), CASES, ids=[h.__name__ for h, _ in CASES])
async def test_a_command_without_a_tenant_is_refused(
    handler: Callable[[Any, CalendarsDeps], Awaitable[Any]], cmd: Any
) -> None:
    for tenant in (None, ""):
        with pytest.raises(ServiceError) as refused:
            await handler(cmd.model_copy(update={"tenant_id": tenant}), _deps())
        assert (refused.value.reply.kind, refused.value.reply.code) == (
            ErrorKind.UNAUTHORIZED,
            "tenant_required",
        )
