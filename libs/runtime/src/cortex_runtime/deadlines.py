"""The saga's deadline on a participant's command: work that arrives too late is refused.

The booking saga waits for each participant's answer up to a timeout and then undoes the
step. A command still queued at that moment (a busy replica, a slow lock) would otherwise
run afterwards, for a saga that has given up: a calendar event or a quota unit for a
booking that failed. Each such command carries ``deadline``, the moment the saga stops
waiting; the participant calls :func:`refuse_if_past` before it acts (and again after any
wait, e.g. for a lock), so nothing happens after the saga gave up.
"""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

DEADLINE_PASSED = "deadline_passed"


def refuse_if_past(deadline: datetime | None, now: datetime | None = None) -> None:
    """Raise ``unavailable`` / ``deadline_passed`` when ``deadline`` is over (None: no limit)."""
    if deadline is None:
        return
    if deadline.tzinfo is None:  # a deadline without an offset is read as UTC
        deadline = deadline.replace(tzinfo=UTC)
    moment = now or datetime.now(UTC)
    if moment >= deadline:
        raise ServiceError(
            ErrorKind.UNAVAILABLE,
            DEADLINE_PASSED,
            "The request arrived after its deadline: nothing was done; try again.",
            {"deadline": deadline.isoformat()},
        )
