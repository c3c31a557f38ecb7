"""S7: peak RSS of every service process, sampled in a background thread while the
scenarios run (the process and any children it has)."""

from __future__ import annotations

import threading
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.common import row
from cortex_dev.stack import Stack

TARGET_MB = 150.0


class RssSampler:
    def __init__(self, stack: Stack, interval_s: float = 0.25) -> None:
        self._stack = stack
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self.peak_mb: dict[str, float] = {}
        self.samples = 0

    def _sample(self) -> None:
        for child in self._stack.children:
            if child.process is None:
                continue
            try:
                proc = psutil.Process(child.process.pid)
                rss = proc.memory_info().rss
                for sub in proc.children(recursive=True):
                    rss += sub.memory_info().rss
            except psutil.Error:
                continue
            mb = rss / 2**20
            self.peak_mb[child.name] = max(self.peak_mb.get(child.name, 0.0), mb)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def report(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        figures = {
            "peak_rss_mb": {k: round(v, 1) for k, v in sorted(self.peak_mb.items())},
            "samples": self.samples,
            "interval_s": self._interval,
        }
        rows = [
            row("S7 memory", f"peak RSS MB {name}", round(mb, 1), "", f"<= {TARGET_MB:.0f}",
                mb <= TARGET_MB)
            for name, mb in sorted(self.peak_mb.items())
        ]  # fmt: skip
        return figures, rows
