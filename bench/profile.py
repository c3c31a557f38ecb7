"""Profile one scenario: ``python -m bench.profile s1|s2|s5 OUT_DIR``.

Starts the whole system as ``make bench`` does, sets the scenario's owner up (S1: the three
Radicale calendars with 2,000 events), measures each process's idle CPU for 5 s, then runs
the scenario with ``py-spy record`` attached to every service (raw collapsed stacks in
OUT_DIR/<process>.txt) and prints the CPU time per request of every process (user + system,
idle subtracted), NATS and PostgreSQL (all its backends) included. Put another checkout's
``src`` directories first on ``PYTHONPATH`` to profile that code with the same script.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench import s1_availability, s1_calendars, s2_booking, s5_settings
from bench.common import bench_stack, make_owner
from cortex_dev.stack import Stack

IDLE_S = 5.0
SPY_S = 13
SPY_RATE = 100
PY_SPY = Path(sys.executable).with_name("py-spy")


def cpu_seconds(stack: Stack, tmp: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for child in stack.children:
        if child.process is not None:
            times = psutil.Process(child.process.pid).cpu_times()
            out[child.name] = times.user + times.system
    for proc in psutil.process_iter(["cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or [])
            if tmp in line and ("postgres" in line or "nats-server" in line):
                key = "postgres" if "postgres" in line else "nats"
                tree = [proc, *proc.children(recursive=True)]
                out[key] = sum(p.cpu_times().user + p.cpu_times().system for p in tree)
        except psutil.Error:
            continue
    own = psutil.Process().cpu_times()
    out["load generator"] = own.user + own.system
    return out


def main(which: str, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cortex-profile-") as tmp:
        stack = bench_stack(Path(tmp) / "data", print)
        try:
            stack.up()
            gateway = stack.gateway_urls[0]
            if which == "s2":
                owner = make_owner(
                    stack, start="00:00", end="24:00", max_advance_days=365, buffer_minutes=0
                )
            else:
                owner = make_owner(stack)
            radicale = None
            data: dict[str, Any] = {}
            if which == "s1":
                radicale = s1_availability.start_radicale(Path(tmp))
                data = s1_availability.connect(gateway, owner, radicale)
                s1_calendars.BASELINE_DURATION_S = 0.5  # the baseline is not profiled
            before_idle = cpu_seconds(stack, tmp)
            time.sleep(IDLE_S)
            idle = {
                k: (v - before_idle.get(k, v)) / IDLE_S for k, v in cpu_seconds(stack, tmp).items()
            }
            spies = [
                subprocess.Popen(
                    [
                        str(PY_SPY),
                        "record",
                        "--pid",
                        str(child.process.pid),
                        "-d",
                        str(SPY_S),
                        "-r",
                        str(SPY_RATE),
                        "-f",
                        "raw",
                        "--nonblocking",
                        "-o",
                        str(out_dir / f"{child.name}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for child in stack.children
                if child.process is not None
            ]
            before = cpu_seconds(stack, tmp)
            started = time.monotonic()
            if which == "s1" and radicale is not None:
                figures, _ = asyncio.run(
                    s1_availability.run(gateway, owner, radicale, data["user"], data["password"])
                )
                radicale.stop()
            elif which == "s5":
                figures, _ = asyncio.run(s5_settings.run(gateway, owner))
            else:
                figures = asyncio.run(s2_booking.through_gateway(gateway, owner))  # no calendar
            seconds = time.monotonic() - started
            after = cpu_seconds(stack, tmp)
            served = figures.get("ok") or figures["gateway"]["ok"]
            summary = figures.get("gateway", figures)
            print(f"{which}: {served} requests in {seconds:.1f}s; "
                  f"{summary['per_second']}/s, p50 {summary['p50_ms']} ms, "
                  f"p99 {summary['p99_ms']} ms, errors {summary['errors']}")  # fmt: skip
            print("CPU ms per request (idle subtracted):")
            for name, value in after.items():
                used = value - before.get(name, value) - idle.get(name, 0.0) * seconds
                print(f"  {name:16} {used * 1000 / served:8.2f}")
            for spy in spies:
                spy.wait()
            print(f"py-spy stacks in {out_dir}")
        finally:
            stack.stop()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("s1", "s2", "s5"):
        sys.exit("usage: python -m bench.profile s1|s2|s5 OUT_DIR")
    main(sys.argv[1], Path(sys.argv[2]))
