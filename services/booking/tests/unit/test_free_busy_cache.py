"""The free/busy cache availability reads through: expiry, invalidation, racing fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from booking.adapters.free_busy_cache import FreeBusyCache
from contracts import calendars as cal

START = datetime(2026, 12, 1, tzinfo=UTC)
END = START + timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answer(hours: int = 1) -> cal.FreeBusy:
    return cal.FreeBusy(
        busy=[cal.BusyInterval(start=START, end=START + timedelta(hours=hours))],
        sources=[],
        unknown=[],
    )


def test_an_answer_is_reused_until_it_expires() -> None:
    clock = Clock()
    cache = FreeBusyCache(5.0, clock=clock)
    assert cache.get("t1", START, END) is None
    value = answer()
    cache.put("t1", START, END, value, cache.generation("t1"))
    assert cache.get("t1", START, END) is value
    assert cache.get("t1", START, END + timedelta(hours=1)) is None  # another range
    assert cache.get("t2", START, END) is None  # another tenant
    clock.now = 5.0
    assert cache.get("t1", START, END) is None


def test_a_calendars_event_drops_the_tenants_answers_only() -> None:
    cache = FreeBusyCache(60.0)
    value = answer()
    cache.put("t1", START, END, value, cache.generation("t1"))
    cache.put("t2", START, END, value, cache.generation("t2"))
    cache.forget("t1")
    assert cache.get("t1", START, END) is None
    assert cache.get("t2", START, END) is value
    cache.forget()
    assert cache.get("t2", START, END) is None


def test_a_fill_that_raced_with_an_invalidation_is_not_kept() -> None:
    cache = FreeBusyCache(60.0)
    asked_under = cache.generation("t1")
    cache.forget("t1")  # the calendars changed while the answer was on its way
    cache.put("t1", START, END, answer(), asked_under)
    assert cache.get("t1", START, END) is None
    asked_under = cache.generation("t1")
    cache.forget()  # everything forgotten (listening started, reconnect, ...)
    cache.put("t1", START, END, answer(), asked_under)
    assert cache.get("t1", START, END) is None


def test_zero_seconds_keeps_nothing() -> None:
    cache = FreeBusyCache(0.0)
    cache.put("t1", START, END, answer(), cache.generation("t1"))
    assert cache.get("t1", START, END) is None
