"""S4: one NATS request/reply hop through the project's runtime versus raw nats-py.

Runtime: ``RpcClient.call`` (pydantic request, FastStream request, typed reply) answered
by a FastStream subscriber registered with ``serve_rpc`` (the same wiring every service
uses, without ``ServiceRuntime``: no database behind it). Raw: ``nc.request`` answered by a
nats-py subscription that responds with fixed bytes. Both sides of both run in this
process, on the stack's NATS server, sequentially.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import nats

from bench.common import row
from bench.load import percentile
from contracts.rpc import Rpc
from contracts.system import Ping, Pong
from cortex_runtime.broker import build_broker, serve_rpc
from cortex_runtime.client import RpcClient

N = 2000
WARMUP = 200
BENCH_PING: Rpc[Ping, Pong] = Rpc(
    subject="benchrpc.ping", request=Ping, reply=Pong, summary="Benchmark ping"
)
RAW_SUBJECT = "benchraw.ping"


def _pong() -> Pong:
    return Pong(service="bench", instance="bench:0", version="0", database=True)


async def _runtime(nats_url: str) -> list[float]:
    # as configure_logging does in every service: FastStream's per-message lines off
    logging.getLogger("faststream").setLevel(logging.WARNING)
    logging.getLogger("faststream.access").setLevel(logging.WARNING)
    broker = build_broker(nats_url, "bench-runtime")

    async def answer(_: Ping) -> Pong:
        return _pong()

    serve_rpc(broker, BENCH_PING, answer)
    await broker.start()
    try:
        client = RpcClient(broker, timeout=5)
        for _ in range(WARMUP):
            await client.call(BENCH_PING, Ping())
        out = []
        for _ in range(N):
            t0 = time.perf_counter()
            await client.call(BENCH_PING, Ping())
            out.append((time.perf_counter() - t0) * 1000)
        return out
    finally:
        await broker.stop()


async def _raw(nats_url: str) -> list[float]:
    server = await nats.connect(nats_url, name="bench-raw-server")
    client = await nats.connect(nats_url, name="bench-raw-client")
    reply = _pong().model_dump_json().encode()
    request = Ping().model_dump_json().encode()

    async def respond(msg: Any) -> None:
        await msg.respond(reply)

    await server.subscribe(RAW_SUBJECT, queue="benchraw", cb=respond)
    await server.flush()
    try:
        for _ in range(WARMUP):
            await client.request(RAW_SUBJECT, request, timeout=5)
        out = []
        for _ in range(N):
            t0 = time.perf_counter()
            await client.request(RAW_SUBJECT, request, timeout=5)
            out.append((time.perf_counter() - t0) * 1000)
        return out
    finally:
        await client.close()
        await server.close()


async def run(nats_url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    raw = await _raw(nats_url)
    runtime = await _runtime(nats_url)
    figures: dict[str, Any] = {"requests_each": N, "warmup_each": WARMUP}
    rows = []
    for q, name in ((50, "p50"), (99, "p99")):
        r, b = percentile(runtime, q), percentile(raw, q)
        ratio = r / b
        figures[f"runtime_{name}_ms"] = round(r, 3)
        figures[f"raw_{name}_ms"] = round(b, 3)
        figures[f"overhead_{name}_x"] = round(ratio, 2)
        rows.append(
            row("S4 rpc hop", f"{name} ms, runtime (x raw)", f"{r:.3f} ({ratio:.2f}x)",
                f"{b:.3f} raw nats-py", "<= 1.5x raw", ratio <= 1.5)
        )  # fmt: skip
    return figures, rows
