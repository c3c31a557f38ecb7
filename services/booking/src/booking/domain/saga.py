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
    LEAVE = "leave"


def recovery_for(step: Step, event_written: bool) -> Recovery:
    """After a crash: once the provider event exists the booking is finished, else undone.

    ``WRITING`` is ambiguous (the write may have happened): it is undone, and undoing
    deletes the event by its UID, which is harmless when there is none.
    """
    if step in (Step.DONE, Step.COMPENSATED, Step.AWAITING_OWNER):
        return Recovery.LEAVE
    if step is Step.ENDING:
        return Recovery.RELEASE
    if step is Step.COMMITTING or (event_written and step is not Step.COMPENSATING):
        return Recovery.FORWARD
    return Recovery.BACKWARD
