"""The feed's cursors keep the form identity issued before the shared cursors existed."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from cortex_runtime.cursors import decode_cursor, encode_cursor
from cortex_runtime.errors import ServiceError
from identity.service_layer.activity import CURSOR_KIND

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _issued_before(occurred_at: datetime, seq: int) -> str:
    """How identity wrote a cursor itself (until the runtime's cursors)."""
    micros = (occurred_at - EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"a:{micros}:{seq}".encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("at", "seq"),
    [
        (datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), 42),
        (EPOCH, 0),
        (datetime(2026, 1, 1, tzinfo=UTC), 2**63 - 1),
    ],
)
def test_a_cursor_issued_before_reads_the_same(at: datetime, seq: int) -> None:
    old = _issued_before(at, seq)
    assert encode_cursor(CURSOR_KIND, at, seq) == old
    assert decode_cursor(old, kind=CURSOR_KIND, key=int) == (at, seq)


def test_another_lists_cursor_is_refused() -> None:
    other = encode_cursor("bk", datetime(2030, 1, 1, tzinfo=UTC), "bk_1")
    with pytest.raises(ServiceError) as refused:
        decode_cursor(other, kind=CURSOR_KIND, key=int)
    assert refused.value.code == "invalid_cursor"
