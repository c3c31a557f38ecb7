"""The ``cortex`` command: ``cortex up`` runs the whole system on this machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from contracts import billing, identity
from contracts.envelope import Message
from contracts.rpc import Rpc
from cortex_dev.embedded import port_is_free
from cortex_dev.stack import DEFAULT_GATEWAY_PORT, Stack
from cortex_runtime.broker import build_broker
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

RepT = TypeVar("RepT", bound=Message)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _replicas(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in filter(None, text.split(",")):
        name, _, count = part.partition("=")
        counts[name.strip()] = int(count)
    return counts


def up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    data_dir = Path(os.environ.get("CORTEX_DATA_DIR", ".cortex")).resolve()
    port = int(os.environ.get("CORTEX_GATEWAY_PORT", DEFAULT_GATEWAY_PORT))

    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {line}", flush=True)

    stack = Stack(data_dir=data_dir, gateway_port=port, replicas=_replicas(args.replicas), say=say)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)
    try:
        host = os.environ.get("CORTEX_GATEWAY_HOST") or "127.0.0.1"  # where uvicorn binds
        for url in stack.gateway_urls:
            gw_port = int(url.rsplit(":", 1)[1])
            if not port_is_free(gw_port, host):
                say(f"port {gw_port} is in use: set CORTEX_GATEWAY_PORT to another port")
                return 1
        say(f"data in {data_dir}")
        stack.up()
        say(f"Cortex is ready: {', '.join(stack.gateway_urls)} (API docs at /docs). Ctrl-C stops.")
        while True:
            time.sleep(0.5)
            stack.check_children()
    except _Stop:
        say("stopping...")
        return 0
    except Exception as exc:
        say(f"failed: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        say("stopped; no process left running")


def _nats_url() -> str:
    """CORTEX_NATS_URL, else the NATS of the system `cortex up` runs from CORTEX_DATA_DIR."""
    url = os.environ.get("CORTEX_NATS_URL")
    if url:
        return url
    runtime = Path(os.environ.get("CORTEX_DATA_DIR", ".cortex")) / "runtime.json"
    if not runtime.exists():
        raise SystemExit(
            "Cortex is not running here: start it with `make up` or set CORTEX_NATS_URL"
        )
    return str(json.loads(runtime.read_text())["nats_url"])


async def _call(rpc: Rpc[Any, RepT], request: Message) -> RepT:
    broker = build_broker(_nats_url(), "cortex-cli")
    async with broker:
        await asyncio.wait_for(broker.connect(), timeout=10)
        return await RpcClient(broker, timeout=15).call(rpc, request)


def tenant_create(args: argparse.Namespace) -> int:
    """Provision a tenant through the same code path as Clerk's user.created."""
    request = identity.ProvisionTenant(
        email=args.email,
        display_name=args.name or "",
        slug=args.slug,
        user_type=args.user_type,
        first_key_name="Default key",
    )
    try:
        reply = asyncio.run(_call(identity.PROVISION_TENANT, request))
    except ServiceError as exc:
        print(json.dumps({"error": exc.reply.message, "code": exc.code}), file=sys.stderr)
        return 1
    settings = reply.settings
    print(
        json.dumps(
            {
                "tenant_id": settings.tenant_id,
                "email": settings.email,
                "slug": settings.slug,
                "api_key": reply.key,
            },
            indent=2,
        )
    )
    return 0


async def _set_plan(tenant_id: str, tier: str) -> billing.PlanSet:
    broker = build_broker(_nats_url(), "cortex-cli")
    async with broker:
        await asyncio.wait_for(broker.connect(), timeout=10)
        client = RpcClient(broker, timeout=15)
        # a tenant identity knows, so a typo does not make a plan for nobody
        await client.call(identity.GET_SETTINGS, identity.GetSettings(tenant_id=tenant_id))
        return await client.call(billing.SET_PLAN, billing.SetPlan(tenant_id=tenant_id, tier=tier))


def plan_set(args: argparse.Namespace) -> int:
    """Move a tenant to a tier without Stripe: the same plan change (and plan_changed event)."""
    try:
        reply = asyncio.run(_set_plan(args.tenant, args.tier))
    except ServiceError as exc:
        print(json.dumps({"error": exc.reply.message, "code": exc.code}), file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "tenant_id": args.tenant,
                "tier": reply.tier.value,
                "previous_tier": reply.previous_tier.value,
                "changed": reply.changed,
            },
            indent=2,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cortex", description="Cortex operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser(
        "up", help="run the whole system on embedded NATS and PostgreSQL"
    )
    up_parser.add_argument(
        "--replicas", default="", help="replicas per process, e.g. booking=2,gateway=2"
    )
    up_parser.set_defaults(run=up)
    tenant = commands.add_parser("tenant", help="tenants").add_subparsers(
        dest="verb", required=True
    )
    create = tenant.add_parser("create", help="provision a tenant and print its first API key")
    create.add_argument("--email", required=True)
    create.add_argument("--slug", default=None)
    create.add_argument("--name", default=None, help="display name")
    create.add_argument("--user-type", default="individual", choices=["individual", "developer"])
    create.set_defaults(run=tenant_create)
    plan = commands.add_parser("plan", help="plans").add_subparsers(dest="verb", required=True)
    set_tier = plan.add_parser("set", help="move a tenant to a plan tier (without Stripe)")
    set_tier.add_argument("tenant", help="tenant id (tn_...)")
    set_tier.add_argument("tier", choices=[tier.value for tier in billing.PlanTier])
    set_tier.set_defaults(run=plan_set)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
