"""Resilience at scale: two gateways, two booking and two calendars replicas, Radicale, real
NATS and PostgreSQL; conflict storms, killed and paused processes, restarted NATS, PostgreSQL
and Radicale. Every scenario ends with the invariants of ``invariants.py`` and a report line
(printed at the end of the run by ``cortex_dev.pytest_plugin``).

Sizes: ``CORTEX_RESILIENCE_SIZE=small`` (default, in ``make test``) or ``full``
(``make test-resilience``).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cortex_dev.embedded import Radicale, free_port
from cortex_dev.stack import Stack, isolated_environ
from tests.e2e.harness import Owner, System, at, future_day
from tests.e2e.resilience import invariants
from tests.e2e.resilience.load import (
    Load,
    Outcome,
    Report,
    count_sagas,
    half_hours,
    is_json_error,
    make_owners,
    size,
)

pytestmark = [pytest.mark.e2e, pytest.mark.resilience, pytest.mark.xdist_group("resilience")]

SIZE = size()
PARTICIPANT_TIMEOUT = 5.0  # the saga's wait for calendars and billing
HOLD_SECONDS = 10.0  # an unfinished saga older than this is recovered by another replica
SETTLE_TIMEOUT = 120.0
SEED = int(os.environ.get("CORTEX_RESILIENCE_SEED", str(random.randrange(1_000_000))))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    root = tmp_path_factory.mktemp("resilience")
    radicale = Radicale(root / "radicale", free_port()).start()
    environ = isolated_environ()
    environ.update(
        CORTEX_BOOKING_HOLD_SECONDS=str(HOLD_SECONDS),
        CORTEX_BOOKING_RECOVERY_INTERVAL_SECONDS="1",
        CORTEX_BOOKING_PARTICIPANT_TIMEOUT_SECONDS=str(PARTICIPANT_TIMEOUT),
        # every owner may book without limit: the storms make hundreds of bookings a month
        CORTEX_BILLING_PLAN_OVERRIDES='{"starter": {"bookings_per_month_individual": null}}',
        CORTEX_BILLING_QUOTA_SWEEP_SECONDS="2",
        # the storms count 201s and 409s: give them time to answer on a busy machine (a 202
        # would still be settled: the gateway hands an unanswered request over to booking)
        CORTEX_GATEWAY_BOOKING_TIMEOUT_SECONDS="30",
    )
    stack = Stack(
        data_dir=root / "data",
        gateway_port=free_port(),
        replicas={"gateway": 2, "booking": 2, "calendars": 2},
        environ=environ,
    )
    try:
        stack.up()
        yield System(stack, radicale)
    finally:
        stack.stop()
        radicale.stop()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[Report]:
    """The scenario's report, attached to the test's result (printed even when it fails)."""
    made = Report(scenario=request.node.name.removeprefix("test_"), size=SIZE.name)
    started = time.monotonic()
    yield made
    made.took_seconds = time.monotonic() - started
    request.node.user_properties.append(("resilience_report", made.line()))


def finish(system: System, owners: list[Owner], report: Report, load: Load | None) -> None:
    """Wait for every saga, count them, and check every invariant; nothing may stay down."""
    system.stack.check_children(restart=False)
    if load is not None:  # a 202's request may be settled by booking only now (hand-over)
        accepted = {o.booking_id for o in load.outcomes if o.status == 202 and o.booking_id}
        asyncio.run(invariants.wait_for_bookings(system, owners, accepted, SETTLE_TIMEOUT))
    report.settle_seconds = asyncio.run(invariants.settle(system, owners, SETTLE_TIMEOUT))
    rows = asyncio.run(invariants.bookings_of(system, owners))
    report.sagas = count_sagas(rows)
    invariants.assert_invariants(system, owners)
    if load is not None:
        lost = accepted_but_lost(load.outcomes, rows)
        assert not lost, f"accepted bookings lost: {lost[:20]}"
        unclean = [o for o in load.outcomes if not o.json_ok or (o.status >= 500 and not o.code)]
        assert not unclean, f"answers that are not JSON errors: {unclean[:5]}"
        crashed = [o for o in load.outcomes if o.status == 500]
        assert not crashed, f"500s (a fault must give 502/503/202, never 500): {crashed[:5]}"
        wrong = moves_disagreements(load, rows)
        assert not wrong, "reschedules: " + "\n".join(wrong[:20])
        report.notes.append(
            "reschedules: "
            + ", ".join(
                f"{s or 'no answer'}: {n}"
                for s, n in sorted(Counter(m.status for m in load.moved).items())
            )
        )
    system.stack.check_children(restart=False)


def moves_disagreements(load: Load, rows: list[Any]) -> list[str]:
    """A reschedule answered 200 left its booking at the new times; one refused (4xx,
    502) kept the old ones; one without an answer (a fault) ended at either, never between.
    Every answer is JSON, none a 500."""
    by_id = {r["id"]: r for r in rows}
    wrong = []
    for m in load.moved:
        row = by_id.get(m.booking_id)
        if row is None:
            wrong.append(f"rescheduled {m.booking_id} has no row")
            continue
        at_new = (row["start_at"], row["end_at"]) == (m.new.start, m.new.end)
        at_old = (row["start_at"], row["end_at"]) == (m.old.start, m.old.end)
        if m.status == 200 and not at_new:
            wrong.append(f"200 {m.booking_id} is at {row['start_at']}, not {m.new.start}")
        elif 400 <= m.status < 500 or m.status == 502:
            if not at_old and row["status"] != "cancelled":
                wrong.append(f"{m.status} {m.code} {m.booking_id} moved to {row['start_at']}")
        elif not (at_old or at_new):
            wrong.append(f"{m.status} {m.booking_id} is at {row['start_at']}: neither time")
        if m.status == 500 or not m.json_ok:
            wrong.append(f"reschedule {m.booking_id} answered {m.status} {m.code}")
    return wrong


def accepted_but_lost(outcomes: list[Outcome], rows: list[object]) -> list[str]:
    """A 201 stays what it said; a 202 ends in a final state that its status URL shows."""
    by_id = {r["id"]: r for r in rows}  # type: ignore[index]
    lost = []
    for o in outcomes:
        if o.status == 201:
            row = by_id.get(o.booking_id)
            if row is None or row["status"] != o.reported:
                lost.append(f"201 {o.reported} {o.booking_id} is now {row and row['status']}")
        elif o.status == 202:
            if o.booking_id not in by_id:
                lost.append(f"202 {o.booking_id} has no booking")
    return lost


def run_with_load(
    system: System,
    owners: list[Owner],
    report: Report,
    fault: Callable[[], float],
    *,
    min_tail: float = 2.0,
    max_tail: float = 60.0,
) -> Load:
    """Steady load (in a thread with its own event loop) while ``fault`` runs here, in the
    main thread: processes it restarts must not be children of a thread that ends, since
    they are asked to die with their parent (PR_SET_PDEATHSIG follows the thread). ``fault``
    returns when the fault ended (monotonic); the load goes on until a booking sent after
    that succeeded (the recovery time)."""
    load = Load(
        system,
        half_hours(owners, last_day=44),
        SIZE.load_workers,
        moves=half_hours(owners, first_day=45),  # owners reschedule bookings under the fault
    )
    thread = threading.Thread(target=lambda: asyncio.run(load.run()), daemon=True)
    thread.start()
    try:
        ended = fault()
        time.sleep(min_tail)
        deadline = time.monotonic() + max_tail
        while load.first_success_after(ended) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        report.recovery_seconds = load.first_success_after(ended)
    finally:
        load.stopping.set()
        thread.join(120)
    report.add(load.outcomes)
    assert report.recovery_seconds is not None, (
        f"no booking succeeded within {max_tail:.0f}s after the fault ended"
    )
    return load


# --- 1. conflict storm ---------------------------------------------------------------------------


async def storm_round(
    client: httpx.AsyncClient, system: System, owner: Owner, base: datetime, n: int
) -> tuple[list[httpx.Response], list[str]]:
    """``n`` concurrent bookings that all contain [base+45, base+50): partial overlaps, an exact
    duplicate, and the first request sent twice with one Idempotency-Key; beside them, two
    bookings exactly adjacent to the contested range, which must both succeed. Afterwards the
    first request is retried with its key and must get the first answer again."""
    bodies = []
    for i in range(n):
        start = base + timedelta(minutes=30 + 5 * (i % 4))
        end = start + timedelta(minutes=20 + 5 * (i % 3))
        bodies.append({"title": f"storm {i}", "start": start.isoformat(),
                       "end": end.isoformat(), "attendee_email": f"s{i}@example.org"})  # fmt: skip
    bodies[1] = {**bodies[0], "attendee_email": "dup@example.org"}  # the same slot exactly
    keys = [uuid.uuid4().hex for _ in range(n)]
    bodies[n - 1], keys[n - 1] = bodies[0], keys[0]  # a concurrent retry of the first request
    union = (base + timedelta(minutes=30), base + timedelta(minutes=70))
    adjacent = [
        {"title": "before", "start": (union[0] - timedelta(minutes=30)).isoformat(),
         "end": union[0].isoformat(), "attendee_email": "before@example.org"},
        {"title": "after", "start": union[1].isoformat(),
         "end": (union[1] + timedelta(minutes=30)).isoformat(), "attendee_email": "after@example.org"},
    ]  # fmt: skip

    async def post(i: int, body: dict[str, str], key: str) -> httpx.Response:
        """One request; a dropped connection is retried with the same Idempotency-Key, as a
        client would (a pooled keep-alive connection may be closed under it)."""
        gw = system.gateways[i % 2]
        for attempt in range(3):
            try:
                return await client.post(
                    f"{gw}/public/{owner.slug}/book", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.TransportError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    sent = [post(i, bodies[i], keys[i]) for i in range(n)]
    sent += [post(i, body, uuid.uuid4().hex) for i, body in enumerate(adjacent)]
    answers: list[httpx.Response] = list(await asyncio.gather(*sent))
    final = [await resolve(client, system, r) for r in answers]  # a 202 counts as it ends
    retry = await post(1, bodies[0], keys[0])
    problems = []
    group, sides = final[:n], final[n:]
    statuses = Counter(status for status, _ in group)
    winners = {booking_id for status, booking_id in group if status == 201}
    if len(winners) != 1 or set(statuses) - {201, 409}:
        problems.append(f"{owner.slug} {base:%m-%d %H:%M}: {dict(statuses)} {len(winners)} winners "
                        f"{[r.text[:120] for r in answers[:n] if r.status_code not in (201, 409)]}")  # fmt: skip
    twins = [group[0], group[n - 1], (retry.status_code, retry.json().get("booking_id"))]
    if {status for status, _ in twins} == {201}:
        if len({booking_id for _, booking_id in twins}) != 1:
            problems.append(f"one Idempotency-Key, several bookings: {twins}")
    elif retry.status_code not in (group[0][0], group[n - 1][0]):  # either was "the first"
        problems.append(f"retry answered {retry.status_code}, first {group[0][0]}")
    for r in [*answers, retry]:
        if r.status_code == 201 and r.json()["status"] != "confirmed":
            problems.append(f"201 with status {r.json()['status']}")
        if r.status_code >= 400 and not is_json_error(r):
            problems.append(f"{r.status_code} that is not a JSON error: {r.text[:200]}")
    problems += [f"adjacent slot refused: {status}" for status, _ in sides if status != 201]
    return [*answers, retry], problems


async def resolve(
    client: httpx.AsyncClient, system: System, response: httpx.Response
) -> tuple[int, str | None]:
    """What the client finally learns: a 202 is polled at its status URL until the saga ends
    (confirmed counts as 201, failed as 409)."""
    if response.status_code != 202:
        booking_id = response.json().get("booking_id") if response.status_code == 201 else None
        return response.status_code, booking_id
    body = response.json()
    deadline = time.monotonic() + 90
    unknown_until = time.monotonic() + 30  # no hold after 30 s: the outcome was never recorded
    while time.monotonic() < deadline:
        polled = await client.get(f"{system.gateways[0]}{body['status_url']}")
        # 404: the request still waits in a busy replica's queue, no hold yet
        status = polled.json()["status"] if polled.status_code == 200 else None
        if status == "confirmed":
            return 201, body["booking_id"]
        if status == "failed":
            return 409, body["booking_id"]
        if status is None and time.monotonic() > unknown_until:
            return 404, body["booking_id"]
        await asyncio.sleep(0.3)
    return 202, body["booking_id"]


# the full storm (200 rounds of 5, 20 of 50) takes minutes on a loaded 2-core machine
@pytest.mark.timeout(1800)
def test_conflict_storm(system: System, report: Report) -> None:
    owners = make_owners(system, 2)
    rounds = [(owners[k % 2], at(future_day(1 + k // 10), 8 + 2 * ((k // 2) % 5)))
              for k in range(SIZE.storm_small_rounds + SIZE.storm_big_rounds)]  # fmt: skip
    small, big = rounds[: SIZE.storm_small_rounds], rounds[SIZE.storm_small_rounds :]
    problems: list[str] = []
    responses: list[httpx.Response] = []

    async def storm() -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            gate = asyncio.Semaphore(SIZE.parallel_rounds)

            async def one(owner: Owner, base: datetime, n: int) -> None:
                async with gate:
                    answers, found = await storm_round(client, system, owner, base, n)
                responses.extend(answers)
                problems.extend(found)

            await asyncio.gather(*(one(o, b, 5) for o, b in small))
            for owner, base in big:  # one round of 50 at a time
                await one(owner, base, SIZE.big_round)

    asyncio.run(storm())
    report.requests = len(responses)
    report.statuses.update(r.status_code for r in responses)
    report.codes.update(r.json().get("code") or "" for r in responses if r.status_code >= 400)
    report.notes.append(
        f"{len(small)} rounds of 5 and {len(big)} rounds of {SIZE.big_round} "
        f"(+2 adjacent and 1 sequential retry each), over 2 gateways; a 202 counted as it "
        "ended (polled at its status URL)"
    )
    assert not [r for r in responses if r.status_code >= 500], "5xx in the storm"
    assert not problems, "\n".join(problems[:30])
    finish(system, owners, report, None)
    # at the database: exactly one active booking inside each contested range
    rows = asyncio.run(invariants.bookings_of(system, owners))
    for owner, base in rounds:
        inside = [r for r in rows if r["slug"] == owner.slug and r["status"] == "confirmed"
                  and base + timedelta(minutes=30) <= r["start_at"] < base + timedelta(minutes=70)]  # fmt: skip
        assert len(inside) == 1, (owner.slug, base, [r["id"] for r in inside])


# --- 2. SIGKILL of replicas and of billing under load ---------------------------------------------


def test_sigkill_booking_calendars_and_billing_under_load(system: System, report: Report) -> None:
    owners = make_owners(system, 1)
    rng = random.Random(SEED)
    killed: list[str] = []

    def fault() -> float:
        for name in ("booking-1", "calendars-1", "billing-1"):
            time.sleep(rng.uniform(1.0, 3.0))
            system.stack.child(name).stop(signal.SIGKILL)
            killed.append(name)
            time.sleep(rng.uniform(0.5, SIZE.fault_seconds))
            system.stack.child(name).start()
        return time.monotonic()

    load = run_with_load(system, owners, report, fault)
    report.notes.append(f"SIGKILL then restart, in turn: {', '.join(killed)} (seed {SEED})")
    finish(system, owners, report, load)


# --- 3. NATS restarted under load ---------------------------------------------------------------


def test_nats_restart_under_load(system: System, report: Report) -> None:
    owners = make_owners(system, 1)
    nats = system.stack.nats
    assert nats is not None

    def fault() -> float:
        time.sleep(2.0)
        nats.stop()
        time.sleep(SIZE.fault_seconds)
        nats.start()  # the same store directory: JetStream's streams and consumers are kept
        return time.monotonic()

    load = run_with_load(system, owners, report, fault)
    report.notes.append(f"NATS down {SIZE.fault_seconds:.0f}s, JetStream store kept")
    finish(system, owners, report, load)


# --- 4. PostgreSQL restarted under load ------------------------------------------------------------


def test_postgres_restart_under_load(system: System, report: Report) -> None:
    owners = make_owners(system, 1)
    postgres = system.stack.postgres
    assert postgres is not None

    def fault() -> float:
        time.sleep(2.0)
        postgres.stop()  # every service's database: one embedded server holds them all
        time.sleep(SIZE.fault_seconds)
        postgres.start(system.stack.logs_dir / "postgres.log")
        return time.monotonic()

    load = run_with_load(system, owners, report, fault)
    report.notes.append(
        f"the PostgreSQL server (all four services' databases) down {SIZE.fault_seconds:.0f}s"
    )
    finish(system, owners, report, load)


# --- 5. billing paused past the saga timeout ---------------------------------------------------


def test_sigstop_billing_past_the_saga_timeout(system: System, report: Report) -> None:
    owners = make_owners(system, 1)
    billing = system.stack.child("billing-1").process
    assert billing is not None
    window: list[datetime] = []

    def fault() -> float:
        time.sleep(2.0)
        window.append(datetime.now(UTC))
        billing.send_signal(signal.SIGSTOP)
        time.sleep(PARTICIPANT_TIMEOUT + SIZE.fault_seconds)
        billing.send_signal(signal.SIGCONT)
        window.append(datetime.now(UTC))
        return time.monotonic()

    load = run_with_load(system, owners, report, fault)
    report.settle_seconds = asyncio.run(invariants.settle(system, owners, SETTLE_TIMEOUT))
    rows = asyncio.run(invariants.bookings_of(system, owners))
    timed_out = {r["id"] for r in rows
                 if window[0] <= r["created_at"] <= window[1] and r["status"] == "failed"}  # fmt: skip
    assert timed_out, "no saga timed out while billing was stopped"
    time.sleep(3.0)  # billing's late answers and the queued requests it handles now
    again = {r["id"]: r for r in asyncio.run(invariants.bookings_of(system, owners))}
    resurrected = [b for b in timed_out if again[b]["status"] != "failed"]
    assert not resurrected, resurrected
    report.notes.append(
        f"billing stopped {PARTICIPANT_TIMEOUT + SIZE.fault_seconds:.0f}s "
        f"(saga timeout {PARTICIPANT_TIMEOUT:.0f}s); {len(timed_out)} sagas timed out and "
        "stayed compensated"
    )
    finish(system, owners, report, load)


# --- 6. Radicale stopped under load ------------------------------------------------------------------


def test_radicale_stopped_under_load(system: System, report: Report) -> None:
    owners = make_owners(system, 1)
    owner = owners[0]
    probe_day = future_day(59)
    seen: dict[str, object] = {}

    def availability() -> httpx.Response:
        return httpx.get(
            f"{system.gateways[1]}/public/{owner.slug}/availability",
            params={"date": probe_day.isoformat()},
            timeout=30,
        )

    def fault() -> float:
        time.sleep(2.0)
        system.radicale.stop()
        down = time.monotonic()
        time.sleep(SIZE.fault_seconds)
        seen["during"] = availability()
        system.radicale.start()
        back = time.monotonic()
        deadline = back + 60
        while time.monotonic() < deadline:
            offered = availability()
            if offered.status_code == 200 and offered.json()["slots"]:
                seen["availability_back"] = time.monotonic() - back
                break
            time.sleep(0.5)
        seen["down"] = back - down
        return back

    load = run_with_load(system, owners, report, fault)
    during = seen["during"]
    assert isinstance(during, httpx.Response)
    assert (during.status_code == 200 and during.json()["slots"] == []) or (
        during.status_code == 503 and is_json_error(during)
    ), f"availability offered time it cannot check: {during.status_code} {during.text[:300]}"
    assert "availability_back" in seen, "availability did not come back after Radicale did"
    refused = [o for o in load.outcomes if o.status in (502, 503)]
    assert refused, "no booking was refused while Radicale was down"
    assert all(o.json_ok and o.code for o in refused), refused[:3]
    report.notes.append(
        f"Radicale down {seen['down']:.1f}s; during it availability answered "
        f"{during.status_code} with no slots; slots offered again "
        f"{seen['availability_back']:.1f}s after it was back"
    )
    finish(system, owners, report, load)
