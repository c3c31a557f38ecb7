"""`make bench`: start the whole system once, run the scenarios, print the table and write
``bench/results/latest.json``. Scenarios and their limits are described in
docs/performance.md.

``python -m bench S8 S5`` runs only the scenarios named (S7 then covers only those) and writes
``bench/results/latest-S5-S8.json``; the owners are made as in a whole run."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench import (
    s1_availability,
    s2_booking,
    s3_conflict,
    s4_rpc,
    s5_settings,
    s6_toon,
    s8_mcp,
    s9_identity_rows,
)
from bench.common import bench_stack, make_owner, row
from bench.s7_memory import RssSampler

RESULTS = Path(__file__).parent / "results" / "latest.json"
LOGS = RESULTS.parent / "logs"  # the services' logs of a run that had errors
PACKAGES = ("nats-py", "faststream", "fastapi", "asyncpg", "httpx", "uvicorn", "pydantic",
            "toon-format", "tiktoken", "psutil")  # fmt: skip
SKIPPED: dict[str, str] = {}


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "packages": versions,
    }


def fmt(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "NO"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    heads = ("scenario", "metric", "value", "baseline", "target", "met")
    cells = [[fmt(r[h]) for h in heads] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = [
        " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(c.ljust(w) for c, w in zip(cs, widths, strict=True)) for cs in cells]
    return "\n".join(lines)


Scenario = Callable[[], Any]


def _errors(figures: Any) -> int:
    """A scenario's errors: its own count, or the sum over its parts (each load it ran)."""
    if not isinstance(figures, dict):
        return 0
    if isinstance(figures.get("errors"), int):
        return int(figures["errors"])
    return sum(_errors(part) for part in figures.values() if isinstance(part, dict))


# in the order they run; S7 covers them
SCENARIOS = ("S4", "S5", "S9", "S1", "S2", "S3", "S6", "S8")


def selection(argv: list[str]) -> tuple[str, ...]:
    """The scenarios named on the command line (any case), or all of them."""
    names = tuple(dict.fromkeys(a.upper() for a in argv))
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    return tuple(n for n in SCENARIOS if n in names) or SCENARIOS


def main(argv: list[str] | None = None) -> int:
    chosen = selection(sys.argv[1:] if argv is None else argv)
    out = (
        RESULTS
        if chosen == SCENARIOS
        else RESULTS.with_name(f"latest-{'-'.join(sorted(chosen))}.json")
    )
    started = time.monotonic()
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "scenarios": {},
        "skipped": dict(SKIPPED),
        "failed": {},
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cortex-bench-") as tmp:
        stack = bench_stack(Path(tmp) / "data", say)
        environ = stack.environ
        results["configuration"] = {
            "replicas": "1 of every service, 1 gateway",
            "data_dir": "temporary directory",
            "environment": {k: v for k, v in environ.items() if k.startswith("CORTEX_")
                            and "PORT" not in k},
            "s1": {"concurrency": s1_availability.CONCURRENCY,
                   "duration_s": s1_availability.DURATION_S},
            "s2": {"concurrency": s2_booking.CONCURRENCY, "bookings": s2_booking.TOTAL},
            "s3": {"concurrency": s3_conflict.CONCURRENCY, "rounds": s3_conflict.ROUNDS},
            "s4": {"requests_each": s4_rpc.N, "warmup_each": s4_rpc.WARMUP},
            "s5": {"concurrency": s5_settings.CONCURRENCY, "duration_s": s5_settings.DURATION_S},
            "s8": {"concurrency": s8_mcp.CONCURRENCY, "rounds": s8_mcp.ROUNDS,
                   "requests_each_round": s8_mcp.PER_ROUND, "warmup_each": s8_mcp.WARMUP},
            "s9": {"rounds": s9_identity_rows.ROUNDS, "reads_each_round": s9_identity_rows.READS,
                   "feed_pages_each_round": s9_identity_rows.PAGES},
            "scenarios_run": list(chosen),
            "load_generator": "httpx.AsyncClient, N asyncio workers, in this process",
        }  # fmt: skip
        try:
            t0 = time.monotonic()
            stack.up()
            results["configuration"]["startup_s"] = round(time.monotonic() - t0, 1)
            gateway = stack.gateway_urls[0]
            with RssSampler(stack) as sampler:

                def attempt(name: str, fn: Scenario) -> None:
                    if name not in chosen:
                        return
                    say(f"{name} ...")
                    t = time.monotonic()
                    try:
                        figures, new_rows = fn()
                    except Exception as exc:
                        results["failed"][name] = traceback.format_exc()[-2000:]
                        rows.append(row(name, "FAILED", repr(exc)[:80]))
                        say(f"{name} failed: {exc!r}")
                        return
                    figures["wall_s"] = round(time.monotonic() - t, 1)
                    results["scenarios"][name] = figures
                    rows.extend(new_rows)
                    say(f"{name} done in {figures['wall_s']}s")

                attempt("S4", lambda: asyncio.run(s4_rpc.run(stack.nats_url)))
                reader = make_owner(stack)
                attempt("S5", lambda: asyncio.run(s5_settings.run(gateway, reader)))
                attempt("S9", lambda: s9_identity_rows.run(stack.postgres))
                attempt("S1", lambda: s1_availability.run_all(gateway, reader, Path(tmp), say))
                booker = make_owner(
                    stack, start="00:00", end="24:00", max_advance_days=365, buffer_minutes=0
                )
                provided = make_owner(
                    stack, start="00:00", end="24:00", max_advance_days=365, buffer_minutes=0
                )
                attempt(
                    "S2",
                    lambda: s2_booking.run_all(
                        gateway, booker, provided, stack.database_urls["booking"], Path(tmp)
                    ),
                )
                attempt(
                    "S3",
                    lambda: asyncio.run(
                        s3_conflict.run(gateway, booker, stack.database_urls["booking"])
                    ),
                )
                attempt("S6", lambda: s6_toon.run(gateway, booker))
                attempt("S8", lambda: asyncio.run(s8_mcp.run(gateway, booker)))
            figures, new_rows = sampler.report()
            figures["covers"] = f"{', '.join(chosen)} (the whole run after start-up)"
            results["scenarios"]["S7"] = figures
            rows.extend(new_rows)
        finally:
            stack.stop()
        errors = {name: _errors(f) for name, f in results["scenarios"].items()}
        if any(errors.values()) or results["failed"]:
            # the services' logs say what went wrong; the temporary directory goes away
            shutil.rmtree(LOGS, ignore_errors=True)
            shutil.copytree(Path(tmp) / "data" / "logs", LOGS)
            results["logs"] = str(LOGS)
    results["rows"] = rows
    results["total_wall_s"] = round(time.monotonic() - started, 1)
    results["errors"] = errors
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(table(rows))
    print()
    if any(errors.values()) or results["failed"]:
        print(f"THIS RUN HAD ERRORS: {errors}; failed scenarios: {list(results['failed'])}")
        print(f"the services' logs are kept in {LOGS}")
    for name, why in SKIPPED.items():
        print(f"skipped {name}: {why}")
    print(f"total {results['total_wall_s']}s; wrote {out}")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
