"""S8: the MCP door against the REST door for the same question: the tool
``query_public_availability`` (``tools/call`` POSTed to ``/mcp``) against
``GET /public/{slug}/availability``, the same owner, page, day and duration.

MCP is sent as plain JSON-RPC over aiohttp, like the REST side (one pooled connection per
client, bodies encoded once before the loop), so both pay the same client cost. The gateway
serves MCP stateless with JSON answers, in two protocol revisions, each measured:

- 2026-07-28 (session-less, what the SDK's high-level client speaks): every request carries
  ``params._meta`` (protocol version, client capabilities) and the ``MCP-Protocol-Version``,
  ``Mcp-Method`` and ``Mcp-Name`` headers; no ``initialize``.
- 2025-11-25 (the session-based protocol, on a stateless server): one ``initialize`` first
  (checked, as a client would send it), then ``tools/call`` with ``MCP-Protocol-Version``.

The tool is asked for ``format: "json"`` so that its text is JSON as REST's answer is (TOON's
own cost is S6's). Before the load, every side's answer is checked: the tool's structured
content and its JSON text equal REST's body. During the load a 200 carrying a tool error
(``"isError":true``) or a JSON-RPC error counts as an error.

The three sides run in alternating rounds (the order rotating) so that a busy moment of the
shared machine falls on all of them. Target (issue 15): MCP within 1.3x of REST at p50 and
p99."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.common import Owner, row
from bench.load import Getter, LoadResult, run_load

CONCURRENCY = 8
ROUNDS = 4
PER_ROUND = 100  # requests of each side in each round: 400 a side
WARMUP = 50  # each side, before the rounds (connections opened, caches warm)
DAY_AHEAD = 3  # inside S2's booked days when the whole bench runs
DURATION_MIN = 30
TARGET_X = 1.3
TOOL = "query_public_availability"
MODERN = "2026-07-28"
HANDSHAKE = "2025-11-25"
ACCEPT = "application/json, text/event-stream"
# a 200 that is not an answer: a tool error, or a JSON-RPC error object
REFUSED = (b'"isError":true', b'"error":{')
SIDES = ("rest", f"mcp_{MODERN}", f"mcp_{HANDSHAKE}")


def _call(day: str, slug: str, version: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": TOOL,
        "arguments": {"slug": slug, "date": day, "duration": DURATION_MIN, "format": "json"},
    }
    if version == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "cortex-bench", "version": "0"},
        }
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def _headers(version: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": ACCEPT,
               "MCP-Protocol-Version": version}  # fmt: skip
    if version == MODERN:
        headers |= {"Mcp-Method": "tools/call", "Mcp-Name": TOOL}
    return headers


def _initialize(client: httpx.Client) -> str:
    """The 2025-11-25 handshake, as a session-based client opens with; the server is
    stateless (no session id), so it is sent once and checked."""
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": HANDSHAKE,
            "capabilities": {},
            "clientInfo": {"name": "cortex-bench", "version": "0"},
        },
    }
    response = client.post("/mcp", json=body, headers=_headers(HANDSHAKE))
    response.raise_for_status()
    result = response.json()["result"]
    if result["protocolVersion"] != HANDSHAKE:
        raise RuntimeError(f"initialize answered {result['protocolVersion']}, not {HANDSHAKE}")
    return str(result["serverInfo"]["name"])


def _check(gateway: str, slug: str, day: str) -> tuple[dict[str, Any], list[str], str]:
    """REST's answer, and how each MCP side's answer differs from it (nothing, if equal)."""
    mismatches: list[str] = []
    with httpx.Client(base_url=gateway, timeout=30) as client:
        rest = client.get(
            f"/public/{slug}/availability", params={"date": day, "duration": DURATION_MIN}
        )
        rest.raise_for_status()
        want = rest.json()
        server = _initialize(client)
        for version in (MODERN, HANDSHAKE):
            response = client.post(
                "/mcp", json=_call(day, slug, version), headers=_headers(version)
            )
            if response.status_code != 200 or "result" not in response.json():
                mismatches.append(f"{version}: http_{response.status_code} {response.text[:200]}")
                continue
            result = response.json()["result"]
            if result.get("isError"):
                mismatches.append(f"{version}: tool error {result.get('structuredContent')}")
            elif result.get("structuredContent") != want:
                mismatches.append(f"{version}: structured content != REST answer")
            elif json.loads(result["content"][0]["text"]) != want:
                mismatches.append(f"{version}: JSON text != REST answer")
    return want, mismatches, server


def _merge(parts: list[LoadResult]) -> LoadResult:
    merged = LoadResult(concurrency=CONCURRENCY, elapsed_s=sum(p.elapsed_s for p in parts))
    for part in parts:
        merged.latencies_ms.extend(part.latencies_ms)
        merged.errors.update(part.errors)
        merged.error_samples.extend(part.error_samples[: 5 - len(merged.error_samples)])
    return merged


async def run(gateway: str, owner: Owner) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    day = (datetime.now(UTC) + timedelta(days=DAY_AHEAD)).date().isoformat()
    want, mismatches, server = _check(gateway, owner.slug, day)
    rest_url = f"{gateway}/public/{owner.slug}/availability"
    rest_params = {"date": day, "duration": str(DURATION_MIN)}
    mcp_url = f"{gateway}/mcp"
    bodies = {v: json.dumps(_call(day, owner.slug, v)).encode() for v in (MODERN, HANDSHAKE)}
    headers = {v: _headers(v) for v in (MODERN, HANDSHAKE)}
    parts: dict[str, list[LoadResult]] = {side: [] for side in SIDES}

    async with Getter(CONCURRENCY) as getter:

        def request(side: str) -> Any:
            async def one(_: int) -> str | None:
                if side == "rest":
                    return await getter.get(rest_url, 200, rest_params)
                version = side.removeprefix("mcp_")
                return await getter.post(mcp_url, 200, bodies[version], headers[version], REFUSED)

            return one

        for side in SIDES:  # warm up; a failure here stops the scenario
            warm = await run_load(request(side), concurrency=CONCURRENCY, total=WARMUP)
            if warm.error_count:
                raise RuntimeError(f"S8 warm-up of {side}: {warm.error_samples[:1]}")
        for r in range(ROUNDS):
            for side in SIDES[r % len(SIDES) :] + SIDES[: r % len(SIDES)]:
                parts[side].append(
                    await run_load(request(side), concurrency=CONCURRENCY, total=PER_ROUND)
                )

    summaries = {side: _merge(parts[side]).summary() for side in SIDES}
    rest = summaries["rest"]
    figures: dict[str, Any] = {
        "day": day,
        "duration_minutes": DURATION_MIN,
        "slots": len(want.get("slots", [])),
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "requests_each_round": PER_ROUND,
        "warmup_each": WARMUP,
        "mcp_server": server,
        "tool_format": "json",
        "answers_match_rest": not mismatches,
        "mismatches": mismatches[:3],
        **summaries,
        "ratios": {},
    }
    rows = []
    for version, label in ((MODERN, "2026-07-28"), (HANDSHAKE, "2025-11-25 stateless")):
        mcp = summaries[f"mcp_{version}"]
        for q in ("p50", "p99"):
            ratio = mcp[f"{q}_ms"] / rest[f"{q}_ms"]
            figures["ratios"][f"{version}_{q}_x"] = round(ratio, 2)
            rows.append(
                row("S8 mcp vs rest", f"{q} ms, MCP {label} (x REST)",
                    f"{mcp[f'{q}_ms']} ({ratio:.2f}x)", f"{rest[f'{q}_ms']} REST GET",
                    f"<= {TARGET_X}x REST", ratio <= TARGET_X)
            )  # fmt: skip
    mcp_errors = sum(summaries[f"mcp_{v}"]["errors"] for v in (MODERN, HANDSHAKE))
    rows += [
        row("S8 mcp vs rest", f"requests/s ({CONCURRENCY} clients): MCP 2026 / 2025",
            f"{summaries[f'mcp_{MODERN}']['per_second']} / "
            f"{summaries[f'mcp_{HANDSHAKE}']['per_second']}", f"{rest['per_second']} REST"),
        row("S8 mcp vs rest", "tool's structured content = REST answer", not mismatches, "",
            "2 revisions equal", not mismatches),
        row("S8 mcp vs rest", f"errors (MCP, {ROUNDS * PER_ROUND} a side)", mcp_errors,
            rest["errors"], "0", mcp_errors == 0 and rest["errors"] == 0),
    ]  # fmt: skip
    return figures, rows
