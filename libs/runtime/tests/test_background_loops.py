"""A background loop that fails is logged and started again, whatever callable it is."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from cortex_runtime import service


async def _sync(deps: str, calls: list[str]) -> None:
    calls.append(deps)
    if len(calls) < 3:
        raise RuntimeError("the database went away")
    raise asyncio.CancelledError


def test_a_partial_is_named_by_its_function() -> None:
    assert service.loop_name(functools.partial(_sync, "deps")) == "_sync"
    assert service.loop_name(_sync) == "_sync"
    assert service.loop_name(lambda: None) == "<lambda>"


def test_a_failing_partial_loop_is_restarted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def no_pause(seconds: float) -> None:
        pauses.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(service.asyncio, "sleep", no_pause)
    with caplog.at_level(logging.ERROR), pytest.raises(asyncio.CancelledError):
        asyncio.run(service._forever(functools.partial(_sync, "deps", calls)))
    assert calls == ["deps"] * 3  # failed twice, started again each time
    assert pauses == [5, 5]
    failures = [r for r in caplog.records if r.getMessage().startswith("background loop failed")]
    assert [getattr(r, "loop", None) for r in failures] == ["_sync", "_sync"]
