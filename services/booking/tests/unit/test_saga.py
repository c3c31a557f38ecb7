"""What recovery does with a saga left in each step."""

from __future__ import annotations

import pytest

from booking.domain.saga import Recovery, Step, recovery_for


@pytest.mark.parametrize(
    ("step", "event_written", "expected"),
    [
        # the owner's confirm stopped while writing: the booking waits for the owner again
        (Step.WRITING, False, Recovery.RETURN),
        # past the pivot a confirm is finished like any booking
        (Step.WRITING, True, Recovery.FORWARD),
        (Step.COMMITTING, False, Recovery.FORWARD),
        (Step.AWAITING_OWNER, True, Recovery.LEAVE),
        (Step.ENDING, True, Recovery.RELEASE),
        (Step.COMPENSATING, False, Recovery.BACKWARD),
    ],
)
def test_recovery_for_an_owners_confirm(
    step: Step, event_written: bool, expected: Recovery
) -> None:
    assert recovery_for(step, event_written, confirming=True) is expected


@pytest.mark.parametrize(
    ("step", "event_written", "expected"),
    [
        (Step.HOLDING, False, Recovery.BACKWARD),
        (Step.PREPARING, False, Recovery.BACKWARD),
        # the write may have happened: undone, the delete by UID is harmless without one
        (Step.WRITING, False, Recovery.BACKWARD),
        (Step.WRITING, True, Recovery.FORWARD),
        (Step.COMMITTING, True, Recovery.FORWARD),
        (Step.COMMITTING, False, Recovery.FORWARD),
        (Step.COMPENSATING, True, Recovery.BACKWARD),
        (Step.COMPENSATING, False, Recovery.BACKWARD),
        # an ended booking (cancelled, declined, expired) stays ended: only its releases
        (Step.ENDING, True, Recovery.RELEASE),
        (Step.ENDING, False, Recovery.RELEASE),
        (Step.DONE, True, Recovery.LEAVE),
        (Step.COMPENSATED, False, Recovery.LEAVE),
        (Step.AWAITING_OWNER, False, Recovery.LEAVE),
    ],
)
def test_recovery_for(step: Step, event_written: bool, expected: Recovery) -> None:
    assert recovery_for(step, event_written) is expected


def test_every_step_has_a_recovery() -> None:
    for step in Step:
        for written in (False, True):
            for confirming in (False, True):
                assert recovery_for(step, written, confirming=confirming) in Recovery
