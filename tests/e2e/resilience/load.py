"""What the resilience scenarios share, on top of tests/e2e/harness.py: sizes, owners, a
steady booking load and the report.

``CORTEX_RESILIENCE_SIZE`` chooses the size: ``small`` (the default, part of ``make test``)
or ``full`` (the issue's sizes, behind ``make test-resilience``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.e2e.harness import Owner, System, at, future_day, make_owner


@dataclass(frozen=True)
class Size:
    name: str
    storm_small_rounds: int  # rounds of 5 conflicting bookings
    storm_big_rounds: int  # rounds of 50
    big_round: int
    parallel_rounds: int  # small rounds in flight at once
    load_workers: int  # concurrent clients of the steady load
    fault_seconds: float  # how long a fault lasts (processes stay down, Radicale is away)


SIZES = {
    "small": Size("small", 20, 2, 50, 4, 3, 3.0),
    "full": Size("full", 200, 20, 50, 8, 6, 6.0),
}


def size() -> Size:
    name = os.environ.get("CORTEX_RESILIENCE_SIZE", "small")
    if name not in SIZES:
        raise ValueError(f"CORTEX_RESILIENCE_SIZE must be one of {sorted(SIZES)}, not {name!r}")
    return SIZES[name]


def is_json_error(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)


# --- owners and their free slots ---------------------------------------------------------------


def make_owners(system: System, count: int) -> list[Owner]:
    return [make_owner(system) for _ in range(count)]


@dataclass(frozen=True)
class Slot:
    owner: Owner
    start: datetime
    end: datetime


def half_hours(owners: list[Owner], first_day: int = 1, last_day: int = 58) -> Iterator[Slot]:
    """Distinct, non-overlapping 30-minute slots inside working hours (08:00-18:00 UTC)."""
    for offset in range(first_day, last_day + 1):
        day = future_day(offset)
        for half in range(20):
            for owner in owners:
                start = at(day, 8) + timedelta(minutes=30 * half)
                yield Slot(owner, start, start + timedelta(minutes=30))


# --- a steady booking load -----------------------------------------------------------------


@dataclass
class Outcome:
    sent_at: float  # monotonic
    took: float
    status: int  # 0: no HTTP answer
    booking_id: str | None
    reported: str | None  # the booking status the answer names
    code: str | None
    json_ok: bool
    slot: Slot


@dataclass
class Moved:
    """One owner's reschedule of a booking the load made: from ``old`` to ``new``."""

    booking_id: str
    old: Slot
    new: Slot
    status: int  # 0: no HTTP answer
    code: str | None
    json_ok: bool


@dataclass
class Load:
    """Clients booking distinct free slots through both gateways until stopped, and (with
    ``moves``) owners rescheduling bookings it made, each once, into other free slots."""

    system: System
    slots: Iterator[Slot]
    workers: int
    outcomes: list[Outcome] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    moves: Iterator[Slot] | None = None  # where reschedules go (other owners' slots skipped)
    move_workers: int = 1
    moved: list[Moved] = field(default_factory=list)

    async def _one(self, client: httpx.AsyncClient, n: int, slot: Slot) -> Outcome:
        body = {
            "title": f"load {n}",
            "start": slot.start.isoformat(),
            "end": slot.end.isoformat(),
            "attendee_email": f"load{n}@example.org",
        }
        gw = self.system.gateways[n % len(self.system.gateways)]
        sent = time.monotonic()
        try:
            response = await client.post(
                f"{gw}/public/{slot.owner.slug}/book",
                json=body,
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
        except httpx.HTTPError:
            return Outcome(sent, time.monotonic() - sent, 0, None, None, None, False, slot)
        took = time.monotonic() - sent
        json_ok = response.status_code < 400 or is_json_error(response)
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        return Outcome(
            sent,
            took,
            response.status_code,
            data.get("booking_id"),
            data.get("status"),
            data.get("code"),
            json_ok,
            slot,
        )

    async def _worker(self, index: int, client: httpx.AsyncClient) -> None:
        n = index
        while not self.stopping.is_set():
            try:
                slot = next(self.slots)
            except StopIteration:
                return
            outcome = await self._one(client, n, slot)
            self.outcomes.append(outcome)
            n += self.workers
            if outcome.status not in (201, 202, 409):
                await asyncio.sleep(0.2)  # a client backs off a little after an error

    def _next_move(self, taken: set[str]) -> tuple[Outcome, Slot] | None:
        """A confirmed booking of the load not moved yet, and a free slot of its owner."""
        assert self.moves is not None
        for outcome in list(self.outcomes):
            if outcome.status == 201 and outcome.reported == "confirmed":
                if outcome.booking_id and outcome.booking_id not in taken:
                    taken.add(outcome.booking_id)
                    for slot in self.moves:
                        if slot.owner is outcome.slot.owner:
                            return outcome, slot
                    return None
        return None

    async def _move(self, client: httpx.AsyncClient, n: int, taken: set[str]) -> None:
        while not self.stopping.is_set():
            found = self._next_move(taken)
            if found is None:
                await asyncio.sleep(0.1)
                continue
            made, slot = found
            gw = self.system.gateways[n % len(self.system.gateways)]
            body = {"start": slot.start.isoformat(), "end": slot.end.isoformat()}
            try:
                response = await client.post(
                    f"{gw}/api/v1/bookings/{made.booking_id}/reschedule",
                    json=body,
                    headers={**slot.owner.auth, "Idempotency-Key": uuid.uuid4().hex},
                )
            except httpx.HTTPError:
                self.moved.append(Moved(str(made.booking_id), made.slot, slot, 0, None, False))
                continue
            try:
                data = response.json()
            except ValueError:
                data = {}
            data = data if isinstance(data, dict) else {}
            json_ok = response.status_code < 400 or is_json_error(response)
            self.moved.append(
                Moved(
                    str(made.booking_id),
                    made.slot,
                    slot,
                    response.status_code,
                    data.get("code"),
                    json_ok,
                )
            )
            n += self.move_workers

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=(self.workers + self.move_workers) * 2)
        taken: set[str] = set()
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            movers = range(self.move_workers) if self.moves is not None else range(0)
            await asyncio.gather(
                *(self._worker(i, client) for i in range(self.workers)),
                *(self._move(client, i, taken) for i in movers),
            )

    def first_success_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` until a booking sent after it was answered 201."""
        done = [
            o.sent_at + o.took - moment
            for o in self.outcomes
            if o.sent_at >= moment and o.status == 201
        ]
        return min(done) if done else None


# --- the report ------------------------------------------------------------------------------


@dataclass
class Report:
    scenario: str
    size: str
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    sagas: Counter[str] = field(default_factory=Counter)
    recovery_seconds: float | None = None
    settle_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    took_seconds: float = 0.0

    def add(self, outcomes: list[Outcome]) -> None:
        self.requests += len(outcomes)
        self.statuses.update(o.status for o in outcomes)
        self.codes.update(o.code for o in outcomes if o.code)

    def line(self) -> str:
        statuses = ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(self.statuses.items()))
        sagas = ", ".join(f"{s}: {n}" for s, n in sorted(self.sagas.items()))
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(self.codes.items()))
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f}s"
        settle = "-" if self.settle_seconds is None else f"{self.settle_seconds:.1f}s"
        text = (
            f"[{self.size}] {self.scenario}: {self.requests} requests in {self.took_seconds:.0f}s "
            f"| HTTP {statuses} | codes {codes or '-'} | sagas {sagas or '-'} "
            f"| recovery {recovery}, all sagas final {settle}"
        )
        return text + "".join(f"\n    {n}" for n in self.notes)


def count_sagas(rows: list[Any]) -> Counter[str]:
    return Counter(r["status"] if r["status"] != "failed" else "compensated" for r in rows)
