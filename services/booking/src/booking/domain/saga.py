"""The booking saga's states, what recovery does with an unfinished one, and the undo plan:
which compensations a saga owes from its step and what it holds. Pure; the steps and
compensations themselves are in ``booking.service_layer.booking_saga``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    HOLDING = "holding"  # the hold row exists; nothing asked of anyone yet
    PREPARING = "preparing"  # live calendar check and quota reservation under way
    AWAITING_OWNER = "awaiting_owner"  # pending: prepared, the owner decides
    WRITING = "writing"  # the provider event is being written (the pivot)
    COMMITTING = "committing"  # event written; committing quota and confirming
    DONE = "done"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    # the booking's end is decided and recorded (cancelled, declined, expired); its calendar
    # event and quota are still being released
    ENDING = "ending"
    # a reschedule (of a pending or confirmed booking): the new interval is held beside the
    # current one, the calendar event is being moved (ambiguous, like ``writing``)
    MOVING = "moving"
    SWAPPING = "swapping"  # the event moved (the pivot): the new interval is being swapped in


class Recovery(StrEnum):
    FORWARD = "forward"  # past the pivot: finish it
    BACKWARD = "backward"  # before the pivot: undo it
    RELEASE = "release"  # ended by the owner or by expiry: release what it still holds
    RETURN = "return"  # an owner's confirm that did not get past the pivot: pending again
    SWAP = "swap"  # a reschedule past its pivot: swap the new times in
    UNMOVE = "unmove"  # a reschedule before its pivot: move the event back, keep the old times
    LEAVE = "leave"


def recovery_for(step: Step, event_written: bool, *, confirming: bool = False) -> Recovery:
    """After a crash: once the provider event exists the booking is finished, else undone.

    ``WRITING`` is ambiguous (the write may have happened): it is undone, and undoing
    deletes the event by its UID, which is harmless when there is none. Except for an
    owner's confirm (``confirming``: the booking was pending): the booking was made before
    the owner was asked, so it goes back to waiting for the owner with its hold, and the
    event that may exist is deleted by its UID only if the booking ends unconfirmed.
    """
    if step in (Step.DONE, Step.COMPENSATED, Step.AWAITING_OWNER):
        return Recovery.LEAVE
    if step is Step.ENDING:
        return Recovery.RELEASE
    if step is Step.SWAPPING:
        return Recovery.SWAP
    if step is Step.MOVING:
        return Recovery.UNMOVE
    if step is Step.COMMITTING or (event_written and step is not Step.COMPENSATING):
        return Recovery.FORWARD
    if confirming and step is Step.WRITING:
        return Recovery.RETURN
    return Recovery.BACKWARD


# --- the undo plan -------------------------------------------------------------------------


class Compensation(StrEnum):
    """One compensation, each the undo of one forward step (in ``booking_saga``)."""

    DELETE_EVENT = "delete_event"  # of writing the provider event (by its UID: idempotent)
    RELEASE_QUOTA = "release_quota"  # of reserving a unit of the month's quota (idempotent)
    FAIL = "fail"  # of the hold: the booking failed, its slot is free, booking_failed says so
    CLOSE = "close"  # of an ended booking's hold: its end was announced when it was decided
    MOVE_BACK = "move_back"  # of moving the event: move it back to the current times
    KEEP_OLD = "keep_old"  # of holding the new interval: drop it, the booking keeps its times


@dataclass(frozen=True, slots=True)
class Held:
    """What a saga holds, as its row records it. ``certain`` is False after a crash, when
    a participant may have done what the row does not record yet."""

    event_written: bool
    quota_reserved: bool
    certain: bool = True


def undo_plan(step: Step, held: Held) -> tuple[Compensation, ...]:
    """The compensations a saga at ``step`` holding ``held`` owes, in the order they run:
    the reverse of the forward steps (the event, then the quota, then the hold).

    Before the pivot (undone): an event is deleted when one was written or may have been
    (``writing``: the write may have happened), the quota released when it was reserved or
    may have been (``preparing``); both always when the row is not ``certain``. An ended
    booking (``ending``) releases exactly what its row says it holds. A finished saga owes
    nothing, and so does a reschedule past its pivot (``swapping``: recovery finishes it).
    A reschedule before its pivot (``moving``) moves the event back to the booking's
    current times, then drops the new interval it held (the booking never let go of its
    slot).
    """
    if step in (Step.DONE, Step.COMPENSATED, Step.SWAPPING):
        return ()
    if step is Step.MOVING:  # a reschedule undone: the event back (when it has one), then
        # the new interval dropped; after a crash the event may exist unrecorded: back too
        back = held.event_written or not held.certain
        return (*([Compensation.MOVE_BACK] if back else []), Compensation.KEEP_OLD)
    if step is Step.ENDING:
        owed = [
            *([Compensation.DELETE_EVENT] if held.event_written else []),
            *([Compensation.RELEASE_QUOTA] if held.quota_reserved else []),
        ]
        return (*owed, Compensation.CLOSE)
    event = not held.certain or held.event_written or step is Step.WRITING
    quota = not held.certain or held.quota_reserved or step is Step.PREPARING
    return (
        *([Compensation.DELETE_EVENT] if event else []),
        *([Compensation.RELEASE_QUOTA] if quota else []),
        Compensation.FAIL,
    )
