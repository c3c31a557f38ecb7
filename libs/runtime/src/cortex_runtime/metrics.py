"""Process-local counters, reported in each service's readiness reply and logs."""

from __future__ import annotations

from collections import Counter
from threading import Lock

_lock = Lock()
_counts: Counter[str] = Counter()


def increment(name: str, amount: int = 1) -> None:
    with _lock:
        _counts[name] += amount


def value(name: str) -> int:
    with _lock:
        return _counts[name]


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)
