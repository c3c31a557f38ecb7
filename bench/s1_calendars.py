"""S1's calendar data: an owner with three CalDAV calendars on an embedded Radicale holding
2,000 events (50 of them recurring series), the Radicale free-busy baseline, and the free time
computed from Radicale's own answer (the reference Cortex's availability must equal).

The events are made from a fixed seed, all in UTC (an embedded VTIMEZONE makes Radicale's
REPORTs several times slower and is not what is measured here). Each calendar is uploaded with
one PUT of the whole collection (Radicale splits it into one resource per UID): 2,000 single
PUTs take over a minute on this kind of machine, three collection PUTs take a few seconds.
"""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from bench.load import run_load
from cortex_dev.embedded import Radicale

CALENDARS = ("work", "personal", "team")
EVENTS = 2000
SERIES = 50
SEED = 20261128
# one resource is one request of the baseline: a free-busy REPORT to each of the 3 calendars
BASELINE_CONNECTIONS = 4  # Radicale's built-in server resets connections past 8
BASELINE_DURATION_S = 8.0


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _vevent(uid: str, start: datetime, end: datetime, summary: str, extra: str = "") -> str:
    return (
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{_stamp(start)}\r\n"
        f"DTSTART:{_stamp(start)}\r\nDTEND:{_stamp(end)}\r\n"
        f"SUMMARY:{summary}\r\n{extra}"
        "END:VEVENT\r\n"
    )


def make_calendars(today: date) -> dict[str, str]:
    """Three VCALENDAR texts: 1,950 single events over 180 days around ``today`` and
    50 recurring series (daily, weekly on some weekdays, every other day; some bounded by
    COUNT or UNTIL, some with an EXDATE), spread across the calendars."""
    rng = random.Random(SEED)
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    bodies: dict[str, list[str]] = {name: [] for name in CALENDARS}
    for i in range(EVENTS - SERIES):
        day = midnight + timedelta(days=rng.randrange(-60, 120))
        start = day + timedelta(minutes=15 * rng.randrange(6 * 4, 21 * 4))
        end = start + timedelta(minutes=15 * rng.randrange(1, 3))
        name = CALENDARS[i % len(CALENDARS)]
        bodies[name].append(_vevent(f"bench-single-{i}@cortex", start, end, f"Meeting {i}"))
    weekdays = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    for i in range(SERIES):
        first = midnight - timedelta(days=rng.randrange(1, 60))
        start = first + timedelta(minutes=15 * rng.randrange(6 * 4, 21 * 4))
        end = start + timedelta(minutes=15 * rng.randrange(1, 3))
        kind = i % 5
        if kind == 0:
            rule = "FREQ=DAILY"
        elif kind == 1:
            rule = "FREQ=WEEKLY;BYDAY=" + ",".join(sorted(rng.sample(weekdays[:5], 2)))
        elif kind == 2:
            rule = "FREQ=DAILY;INTERVAL=2;COUNT=60"
        elif kind == 3:
            rule = f"FREQ=WEEKLY;UNTIL={_stamp(midnight + timedelta(days=rng.randrange(3, 40)))}"
        else:
            rule = "FREQ=WEEKLY;INTERVAL=2"
        extra = f"RRULE:{rule}\r\n"
        if i % 3 == 0:  # one occurrence taken out (the series' 3rd day from its start)
            extra += f"EXDATE:{_stamp(start + timedelta(days=2))}\r\n"
        name = CALENDARS[i % len(CALENDARS)]
        bodies[name].append(_vevent(f"bench-series-{i}@cortex", start, end, f"Series {i}", extra))
    return {
        name: "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Cortex bench//EN\r\n"
        + "".join(events)
        + "END:VCALENDAR\r\n"
        for name, events in bodies.items()
    }


def upload(radicale: Radicale, user: str, password: str, today: date) -> dict[str, Any]:
    """Create the user's three calendars with one PUT each; returns sizes and the time."""
    t0 = time.monotonic()
    texts = make_calendars(today)
    with httpx.Client(auth=(user, password), timeout=120) as client:
        for name, text in texts.items():
            response = client.put(
                f"{radicale.url}{user}/{name}/",
                content=text.encode(),
                headers={"Content-Type": "text/calendar; charset=utf-8"},
            )
            response.raise_for_status()
    return {
        "calendars": len(texts),
        "events": EVENTS,
        "recurring_series": SERIES,
        "ics_bytes": sum(len(t) for t in texts.values()),
        "upload_s": round(time.monotonic() - t0, 2),
    }


# --- the baseline: Radicale answering free-busy REPORTs --------------------------------------


def _report_body(start: datetime, end: datetime) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f'<C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/>'
        "</C:free-busy-query>"
    )


_PERIOD = re.compile(r"(\d{8}T\d{6}Z)/(\d{8}T\d{6}Z|P[0-9DTHMSW]+)")
_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def parse_free_busy(text: str) -> list[tuple[datetime, datetime]]:
    """The busy periods of a VFREEBUSY answer (FREEBUSY lines may be folded)."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    busy = []
    for line in unfolded.splitlines():
        if not line.startswith("FREEBUSY"):
            continue
        if "FBTYPE=FREE" in line.split(":", 1)[0]:
            continue
        for first, second in _PERIOD.findall(line.split(":", 1)[1]):
            start = _parse_stamp(first)
            if second.startswith("P"):
                w, d, h, m, s = (int(x or 0) for x in _DURATION.fullmatch(second).groups())  # type: ignore[union-attr]
                end = start + timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=s)
            else:
                end = _parse_stamp(second)
            busy.append((start, end))
    return busy


async def free_busy(
    client: httpx.AsyncClient, base: str, user: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """One baseline request: the free-busy REPORT of each of the three calendars."""
    busy: list[tuple[datetime, datetime]] = []
    body = _report_body(start, end)
    for name in CALENDARS:
        response = await client.request(
            "REPORT",
            f"{base}{user}/{name}/",
            content=body,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
        )
        response.raise_for_status()
        busy.extend(parse_free_busy(response.text))
    return busy


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


async def baseline(
    radicale: Radicale, user: str, password: str, days: list[date]
) -> tuple[dict[str, Any], dict[date, list[tuple[datetime, datetime]]]]:
    """Radicale measured like Cortex (the same days in turn, a fixed duration), with its
    connections capped; also returns each day's busy time for the reference answer."""
    limits = httpx.Limits(
        max_connections=BASELINE_CONNECTIONS, max_keepalive_connections=BASELINE_CONNECTIONS
    )
    async with httpx.AsyncClient(auth=(user, password), timeout=120, limits=limits) as client:
        answers = {
            day: await free_busy(client, radicale.url, user, *_day_bounds(day)) for day in days
        }

        async def one(i: int) -> str | None:
            await free_busy(client, radicale.url, user, *_day_bounds(days[i % len(days)]))
            return None

        result = await run_load(
            one, concurrency=BASELINE_CONNECTIONS, duration_s=BASELINE_DURATION_S
        )
    return result.summary(), answers


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def expected_windows(
    day: date, busy: list[tuple[datetime, datetime]], work: tuple[str, str], duration: int
) -> list[tuple[datetime, datetime]]:
    """Free time of one UTC day from Radicale's busy periods: working hours minus busy,
    pieces of at least ``duration`` minutes (buffer 0, the day far enough ahead that min
    notice and max advance do not cut it)."""
    start, _ = _day_bounds(day)
    (h1, m1), (h2, m2) = (map(int, t.split(":")) for t in work)
    free = [(start + timedelta(hours=h1, minutes=m1), start + timedelta(hours=h2, minutes=m2))]
    for b_start, b_end in _merge(busy):
        pieces = []
        for f_start, f_end in free:
            if b_end <= f_start or b_start >= f_end:
                pieces.append((f_start, f_end))
                continue
            if b_start > f_start:
                pieces.append((f_start, b_start))
            if b_end < f_end:
                pieces.append((b_end, f_end))
        free = pieces
    return [(s, e) for s, e in free if e - s >= timedelta(minutes=duration)]


def slots_of(answer: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    return [
        (datetime.fromisoformat(s["start"]).astimezone(UTC),
         datetime.fromisoformat(s["end"]).astimezone(UTC))
        for s in answer["slots"]
    ]  # fmt: skip
