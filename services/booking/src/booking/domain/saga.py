"""The booking saga's states and what recovery does with an unfinished one. Pure."""

from __future__ import annotations

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


class Recovery(StrEnum):
    FORWARD = "forward"  # past the pivot: finish it
    BACKWARD = "backward"  # before the pivot: undo it
    RELEASE = "release"  # ended by the owner or by expiry: release what it still holds
    RETURN = "return"  # an owner's confirm that did not get past the pivot: pending again
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
    if step is Step.COMMITTING or (event_written and step is not Step.COMPENSATING):
        return Recovery.FORWARD
    if confirming and step is Step.WRITING:
        return Recovery.RETURN
    return Recovery.BACKWARD
