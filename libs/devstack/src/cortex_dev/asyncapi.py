"""AsyncAPI documents of every service, generated from the FastStream apps themselves.

``python -m cortex_dev.asyncapi --write docs/asyncapi`` (``make docs``) writes them;
``--check`` fails when a checked-in document differs from what the code declares.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from contracts.subjects import SERVICES


def document(service: str) -> dict[str, Any]:
    bootstrap = importlib.import_module(f"{service}.entrypoints.bootstrap").bootstrap
    settings_module = importlib.import_module(f"{service}.settings")
    settings_type = getattr(settings_module, f"{service.capitalize()}Settings")
    # fixed values, so the document depends on the code and not on this shell's variables
    settings = settings_type(env="development", nats_url="nats://nats:4222")
    runtime = bootstrap(settings)
    spec: dict[str, Any] = json.loads(runtime.app().schema.to_specification().to_json())
    return spec


def render(service: str) -> str:
    return json.dumps(document(service), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="write <service>.json into this folder")
    parser.add_argument("--check", type=Path, help="compare with the documents in this folder")
    args = parser.parse_args(argv)
    stale = []
    for service in SERVICES:
        text = render(service)
        if args.write:
            args.write.mkdir(parents=True, exist_ok=True)
            (args.write / f"{service}.json").write_text(text)
        if args.check:
            path = args.check / f"{service}.json"
            if not path.exists() or path.read_text() != text:
                stale.append(service)
    if stale:
        names = ", ".join(stale)
        print(f"AsyncAPI documents out of date: {names}; run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
