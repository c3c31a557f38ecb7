"""A participant refuses a saga's command past its deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.rpc import ErrorKind
from cortex_runtime.deadlines import refuse_if_past
from cortex_runtime.errors import ServiceError

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_no_deadline_or_one_ahead_lets_the_work_run() -> None:
    refuse_if_past(None, NOW)
    refuse_if_past(NOW + timedelta(milliseconds=1), NOW)


@pytest.mark.parametrize(
    "deadline",
    [NOW, NOW - timedelta(seconds=1), (NOW - timedelta(seconds=1)).replace(tzinfo=None)],
)
def test_at_or_past_the_deadline_is_refused(deadline: datetime) -> None:
    with pytest.raises(ServiceError) as refused:
        refuse_if_past(deadline, NOW)
    assert (refused.value.kind, refused.value.code) == (ErrorKind.UNAVAILABLE, "deadline_passed")
    assert refused.value.reply.details["deadline"].startswith("2026-03-01T1")
