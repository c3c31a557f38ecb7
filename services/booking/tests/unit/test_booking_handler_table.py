"""Booking's handler table: every command of booking's contracts is served once, every
event booking consumes is handled, and the hand-over keeps its timings."""

from __future__ import annotations

from booking.entrypoints.handlers import handlers
from booking.settings import BookingSettings
from contracts import booking as msg
from contracts import booking_changes as changes
from contracts import gateway as gw
from contracts import identity as ident
from contracts import owners as owner_msg
from contracts import policies as policy_msg
from contracts import subjects
from cortex_runtime.handlers import EventRoute, PlainEventRoute, RpcRoute


def _table(**settings: object) -> tuple[object, ...]:
    return handlers(BookingSettings(**settings))  # type: ignore[arg-type]


def test_every_booking_command_is_answered_once() -> None:
    served = [r.spec.subject for r in _table() if isinstance(r, RpcRoute)]
    assert len(served) == len(set(served))
    owner_commands = (owner_msg.APPLY_OWNER_SETTINGS, owner_msg.OWNER_CALENDARS_CHANGED)
    commands = (*msg.RPCS, *changes.RPCS, *policy_msg.RPCS, *owner_commands)
    assert all(c.subject.startswith(f"{subjects.BOOKING}.v1.cmd.") for c in commands)
    assert set(served) == {c.subject for c in commands}


def test_the_events_it_consumes() -> None:
    inbox = {r.spec.subject for r in _table() if isinstance(r, EventRoute)}
    assert inbox == {
        ident.TENANT_CREATED.subject,
        ident.SETTINGS_CHANGED.subject,
        ident.TENANT_DELETED.subject,
    }
    (handover,) = [r for r in _table() if isinstance(r, PlainEventRoute)]
    assert handover.spec is gw.BOOKING_UNANSWERED


def test_the_handover_outlasts_the_participants_and_any_outage() -> None:
    (handover,) = [
        r for r in _table(participant_timeout_seconds=20) if isinstance(r, PlainEventRoute)
    ]
    assert handover.ack_wait == 80
    assert handover.delivery is not None
    assert handover.delivery.outlast_outages and handover.delivery.max_backoff_seconds == 5.0
    (short,) = [r for r in _table() if isinstance(r, PlainEventRoute)]
    assert short.ack_wait == 60
