"""Helpers shared by the scenarios: owners, HTTP checks, result rows."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cortex_dev.embedded import free_port
from cortex_dev.stack import Stack, isolated_environ

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# the quota of the free tier would stop the benchmark (20 bookings a month, 1,000 calls a
# day): lifted through billing's settings, not code
PLAN_OVERRIDES = {
    "starter": {
        "calls_per_day": None,
        "bookings_per_month_individual": None,
        "bookings_per_month_developer": None,
    }
}


def bench_stack(data_dir: Path, say: Callable[[str], None]) -> Stack:
    """The whole system as ``make bench`` runs it: one of each process, limits lifted."""
    environ = isolated_environ(
        CORTEX_BILLING_PLAN_OVERRIDES=json.dumps(PLAN_OVERRIDES),
        # S1's first sync reads 2,000 events from Radicale in one REPORT per calendar:
        # slower than the default 15 s on a busy 2-core machine
        CORTEX_CALENDARS_HTTP_TIMEOUT_SECONDS="120",
    )
    return Stack(
        data_dir=data_dir,
        gateway_port=free_port(),
        replicas={"gateway": 1},
        environ=environ,
        say=say,
    )


@dataclass
class Owner:
    slug: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_owner(stack: Stack, *, start: str = "08:00", end: str = "18:00", **rules: object) -> Owner:
    """Provision a tenant with the operator CLI, set UTC, working hours and booking rules,
    open scheduling, and wait until booking serves its public page."""
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [sys.executable, "-m", "cortex_dev.cli", "tenant", "create",
         "--email", f"{slug}@example.com", "--slug", slug, "--name", "Bench owner"],
        env={**stack.environ, "CORTEX_NATS_URL": stack.nats_url},
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    owner = Owner(slug, json.loads(out.stdout)["api_key"])
    gw = stack.gateway_urls[0]
    put = {
        "/api/v1/settings/timezone": {"timezone": "UTC"},
        "/api/v1/settings/working-hours": {
            "working_hours": {d: [{"start": start, "end": end}] for d in WEEK}
        },
        "/api/v1/settings/booking-rules": {"min_notice_hours": 0, "max_advance_days": 60, **rules},
        "/api/v1/settings/open-scheduling": {"enabled": True},
    }
    for path, body in put.items():
        response = httpx.put(f"{gw}{path}", json=body, headers=owner.auth, timeout=30)
        response.raise_for_status()
    # booking learns the settings through events: wait until its page answers
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * 86400))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = httpx.get(f"{gw}/public/{slug}/availability", params={"date": day}, timeout=10)
        if page.status_code == 200:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"booking never served {slug}: {page.status_code} {page.text[:200]}")
    return owner


def check(response: httpx.Response, *expected: int) -> str | None:
    if response.status_code in expected:
        return None
    return f"http_{response.status_code} {response.text[:200]}"


def row(
    scenario: str, metric: str, value: Any, baseline: Any = "", target: str = "", met: Any = ""
) -> dict[str, Any]:
    """One line of the table; ``met`` is True, False or "" (no target)."""
    return {
        "scenario": scenario,
        "metric": metric,
        "value": value,
        "baseline": baseline,
        "target": target,
        "met": met,
    }
