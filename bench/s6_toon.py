"""S6: TOON versus JSON: tokens (cl100k, ``gateway.toon.count_tokens``) for the REST
reference's dashboard example, the live dashboard, an activity feed of 50 items and a week of
availability, each as the gateway answers it in TOON; and encode speed over ~1 MB.

TOON is an encoding, not a view (issue 15): the TOON measured is the JSON answer itself
encoded (``gateway.toon.encode``, what ``Accept: text/toon`` and the MCP tools send), and the
bench checks that it decodes (``toon_format``) to exactly that JSON answer. There is no
reshaped view any more (issue 7's availability ``HH:MM`` times and dashboard ``used/limit``
figures): the numbers here are TOON's own.

Target (issue 7): the dashboard example and a week of availability at least 40% fewer tokens
than pretty JSON and at least 20% fewer than compact JSON."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import toon_format

from bench.common import Owner, row
from gateway.toon import count_tokens, encode

# the REST reference's example response, verbatim
SEED_DASHBOARD: dict[str, Any] = {
    "plan": {
        "tier": "starter", "user_type": "individual", "calendars_connected": 2,
        "calendars_limit": None, "bookings_used": 5, "bookings_limit": 20,
        "calls_today": 42, "calls_daily_limit": None,
    },
    "calendars": [{"provider": "google", "email": "[email protected]", "calendar_count": 3}],
    "recent_activity": [],
}  # fmt: skip
TARGETED = ("dashboard_seed_example", "availability_week")


def _fetch(gateway: str, owner: Owner) -> dict[str, Any]:
    """Real bodies from the running system, for the owner who has bookings."""
    with httpx.Client(base_url=gateway, headers=owner.auth, timeout=30) as client:
        dashboard = client.get("/api/v1/dashboard/summary")
        dashboard.raise_for_status()
        activity = client.get("/api/v1/activity", params={"limit": 50})
        activity.raise_for_status()
        week = []
        for d in range(2, 9):
            day = (datetime.now(UTC) + timedelta(days=d)).date().isoformat()
            page = client.get(f"/public/{owner.slug}/availability", params={"date": day})
            page.raise_for_status()
            week.append(page.json())
    return {"dashboard": dashboard.json(), "activity": activity.json(), "week": week}


def _synthetic_activity(have: dict[str, Any]) -> dict[str, Any]:
    """50 items in the activity feed's shape, when the owner has fewer real ones."""
    now = datetime.now(UTC)
    kinds = ("booking.confirmed", "booking.cancelled", "calendar.connected", "settings.updated")
    items = [
        {"id": f"act_{i:06d}", "type": kinds[i % 4],
         "summary": f"Intro call with guest{i}@example.org at {now + timedelta(hours=i):%H:%M}",
         "occurred_at": (now - timedelta(minutes=7 * i)).isoformat().replace("+00:00", "Z"),
         "ids": {"booking_id": f"bk_{i:08x}"}}
        for i in range(50)
    ]  # fmt: skip
    return {"items": items, "next_cursor": have.get("next_cursor")}


def _tokens(value: Any) -> dict[str, Any]:
    """Tokens of ``value`` in pretty JSON, compact JSON and TOON (its exact encoding)."""
    toon_text = encode(value)
    if toon_format.decode(toon_text) != value:
        raise AssertionError("the TOON answer does not decode to the JSON answer")
    pretty = json.dumps(value, indent=2)
    compact = json.dumps(value, separators=(",", ":"))
    out: dict[str, Any] = {
        "pretty_json": count_tokens(pretty),
        "compact_json": count_tokens(compact),
        "toon": count_tokens(toon_text),
    }
    out["toon_vs_compact"] = round(out["toon"] / out["compact_json"], 3)
    out["toon_vs_pretty"] = round(out["toon"] / out["pretty_json"], 3)
    return out


def _uniform_array(target_bytes: int = 1_000_000) -> list[dict[str, Any]]:
    one = {
        "id": 0, "name": "Ada Lovelace", "email": "ada@example.org", "active": True,
        "score": 12.5, "start": "2025-01-06T09:00:00Z", "end": "2025-01-06T09:30:00Z",
    }  # fmt: skip
    n = target_bytes // len(json.dumps(one, separators=(",", ":")))
    return [{**one, "id": i, "score": i / 8} for i in range(n)]


def _speed(fn: Any, value: Any, size: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(value)
        best = min(best, time.perf_counter() - t0)
    return size / best / 1e6


def run(gateway: str, owner: Owner) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    bodies = _fetch(gateway, owner)
    notes = []
    activity = bodies["activity"]
    if len(activity.get("items", [])) < 50:
        notes.append(
            f"activity: the owner had {len(activity.get('items', []))} real items; "
            "50 synthetic items of the same shape were used"
        )
        activity = _synthetic_activity(activity)
    week = bodies["week"]
    # a week: the seven days' answers, each as the gateway sends it in TOON
    days = [_tokens(day) for day in week]
    week_tokens = {k: sum(d[k] for d in days) for k in ("pretty_json", "compact_json", "toon")}
    week_tokens["toon_vs_compact"] = round(week_tokens["toon"] / week_tokens["compact_json"], 3)
    week_tokens["toon_vs_pretty"] = round(week_tokens["toon"] / week_tokens["pretty_json"], 3)
    tokens = {
        "dashboard_seed_example": _tokens(SEED_DASHBOARD),
        "dashboard_live": _tokens(bodies["dashboard"]),
        "activity_50": _tokens(activity),
        "availability_week": week_tokens,
    }
    tokens["availability_week"]["slots"] = sum(len(d.get("slots", [])) for d in week)

    data = _uniform_array()
    size = len(json.dumps(data, separators=(",", ":")).encode())
    json_mb_s = round(_speed(json.dumps, data, size, 5), 1)
    toon_mb_s = round(_speed(encode, data, size, 2), 2)
    speed: dict[str, Any] = {
        "input_compact_json_bytes": size,
        "items": len(data),
        "json_dumps_mb_s": json_mb_s,
        "toon_encode_mb_s": toon_mb_s,
        "note": "MB/s = compact-JSON size of the input / best wall time of the gateway's "
        "TOON v3 encoder (gateway.toon.encode)",
    }
    ratio = toon_mb_s / json_mb_s
    rows = []
    for name, t in tokens.items():
        targeted = name in TARGETED
        met = t["toon_vs_pretty"] <= 0.6 and t["toon_vs_compact"] <= 0.8
        rows.append(
            row("S6 toon", f"{name} tokens: toon (x compact, x pretty)",
                f"{t['toon']} ({t['toon_vs_compact']:.2f}x, {t['toon_vs_pretty']:.2f}x)",
                f"{t['compact_json']} compact / {t['pretty_json']} pretty JSON",
                "<= 0.80x compact, <= 0.60x pretty" if targeted else "",
                met if targeted else "")
        )  # fmt: skip
    rows.append(
        row("S6 toon", "encode MB/s: gateway TOON v3 encoder (x json)",
            f"{speed['toon_encode_mb_s']} ({ratio:.3f}x)",
            f"{speed['json_dumps_mb_s']} json.dumps")
    )  # fmt: skip
    return {"tokens": tokens, "encode_speed": speed, "notes": notes}, rows
