"""What recovery does with a saga left in each step."""

from __future__ import annotations

import pytest

from booking.domain.saga import Compensation, Held, Recovery, Step, recovery_for, undo_plan


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


# --- the undo plan ----------------------------------------------------------------------------

DELETE, RELEASE, FAIL, CLOSE = (
    Compensation.DELETE_EVENT,
    Compensation.RELEASE_QUOTA,
    Compensation.FAIL,
    Compensation.CLOSE,
)


@pytest.mark.parametrize(
    ("step", "held", "plan"),
    [
        # before anything was asked of a participant: only the hold
        (Step.HOLDING, Held(False, False), (FAIL,)),
        # preparing: the reservation may have been made before its answer came back
        (Step.PREPARING, Held(False, False), (RELEASE, FAIL)),
        (Step.PREPARING, Held(False, True), (RELEASE, FAIL)),
        # writing: the event may have been written (deleted by its UID, harmless if none)
        (Step.WRITING, Held(False, True), (DELETE, RELEASE, FAIL)),
        # an undo already under way: what its row records
        (Step.COMPENSATING, Held(False, False), (FAIL,)),
        (Step.COMPENSATING, Held(True, True), (DELETE, RELEASE, FAIL)),
        # after a crash nothing is certain: both participants are undone
        (Step.HOLDING, Held(False, False, certain=False), (DELETE, RELEASE, FAIL)),
        (Step.COMPENSATING, Held(False, False, certain=False), (DELETE, RELEASE, FAIL)),
        # an ended booking releases exactly what it holds, then closes (no new announcement)
        (Step.ENDING, Held(True, True), (DELETE, RELEASE, CLOSE)),
        (Step.ENDING, Held(True, False), (DELETE, CLOSE)),
        (Step.ENDING, Held(False, True), (RELEASE, CLOSE)),
        (Step.ENDING, Held(False, False, certain=False), (CLOSE,)),
        # a finished saga owes nothing
        (Step.DONE, Held(True, True), ()),
        (Step.COMPENSATED, Held(False, False, certain=False), ()),
    ],
)
def test_undo_plan(step: Step, held: Held, plan: tuple[Compensation, ...]) -> None:
    assert undo_plan(step, held) == plan


def test_every_plan_undoes_in_reverse_and_releases_the_hold_last() -> None:
    order = [DELETE, RELEASE]
    for step in Step:
        for written in (False, True):
            for reserved in (False, True):
                for certain in (False, True):
                    plan = undo_plan(step, Held(written, reserved, certain))
                    if step in (Step.DONE, Step.COMPENSATED, Step.SWAPPING):
                        assert plan == ()
                        continue
                    if step is Step.MOVING:  # a reschedule: the event back, the old times kept
                        back = written or not certain
                        move_back = (Compensation.MOVE_BACK,) if back else ()
                        assert plan == (*move_back, Compensation.KEEP_OLD)
                        continue
                    *participants, last = plan
                    assert last is (CLOSE if step is Step.ENDING else FAIL)
                    assert participants == [c for c in order if c in participants]
                    # whatever the row says it holds is always released
                    assert (DELETE in participants) >= written
                    assert (RELEASE in participants) >= reserved


def test_a_reschedule_is_undone_before_its_pivot_and_finished_after() -> None:
    """``moving`` (the event may have moved) is undone: moved back, the old times kept;
    ``swapping`` (the event moved) is finished: the new times swapped in."""
    for written in (False, True):
        assert recovery_for(Step.MOVING, written) is Recovery.UNMOVE
        assert recovery_for(Step.SWAPPING, written) is Recovery.SWAP
        assert recovery_for(Step.MOVING, written, confirming=True) is Recovery.UNMOVE
