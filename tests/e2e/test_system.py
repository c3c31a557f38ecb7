"""The whole system as processes: `cortex up`, readiness, and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from cortex_dev.embedded import free_port
from cortex_dev.stack import Stack, isolated_environ

pytestmark = pytest.mark.e2e

CORTEX = Path(sys.executable).with_name("cortex")


def start_cortex_up(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], float, list[str]]:
    env = {
        **os.environ,
        "CORTEX_DATA_DIR": str(data_dir),
        "CORTEX_GATEWAY_PORT": str(port),
        "CORTEX_NATS_PORT": str(free_port()),
        "CORTEX_POSTGRES_PORT": str(free_port()),
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(CORTEX), "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        if "Cortex is ready" in line or "failed:" in line:
            break
    assert any("Cortex is ready" in line for line in lines), "\n".join(lines)
    return proc, time.monotonic() - started, lines


def descendants(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


def stop_with_ctrl_c(proc: subprocess.Popen[str], children: list[psutil.Process]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    assert proc.returncode == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"


def test_cortex_up_serves_ready_and_stops_leaving_nothing(tmp_path: Path) -> None:
    port = free_port()
    proc, first, lines = start_cortex_up(tmp_path / "data", port)
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["missing"] == []
        names = " ".join(" ".join(p.cmdline()) for p in descendants(proc))
        for program in ("nats-server", "postgres", "-m identity", "-m booking", "-m calendars",
                        "-m billing", "-m gateway"):  # fmt: skip
            assert program in names
        assert any(f"http://127.0.0.1:{port}" in line for line in lines)
        children = descendants(proc)
    except BaseException:
        proc.kill()
        raise
    stop_with_ctrl_c(proc, children)

    # the second start reuses the data directory: no initdb, data kept
    proc, second, lines = start_cortex_up(tmp_path / "data", port)
    children = descendants(proc)
    stop_with_ctrl_c(proc, children)
    print(f"\ncortex up: first start {first:.1f}s, second start {second:.1f}s")
    assert any("PostgreSQL started" in line for line in lines), lines
    assert second < 60


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    environ = isolated_environ()
    environ.update(CORTEX_NATS_PORT=str(free_port()), CORTEX_POSTGRES_PORT=str(free_port()))
    system = Stack(data_dir=tmp_path / "data", gateway_port=free_port(), environ=environ)
    try:
        system.up()
        yield system
    finally:
        system.stop()


def test_ready_names_the_stopped_service_and_recovers(stack: Stack) -> None:
    url = f"{stack.gateway_urls[0]}/ready"
    assert httpx.get(url, timeout=5).status_code == 200
    billing = stack.child("billing-1")
    billing.stop()
    response = httpx.get(url, timeout=10)
    assert response.status_code == 503
    body = response.json()
    assert body["missing"] == ["billing"]
    assert body["error"] == "Not ready: billing."
    billing.start()
    stack.wait_ready(timeout=60)


def test_services_refuse_development_secrets_in_production(stack: Stack) -> None:
    env = {**stack.env_for("identity"), "CORTEX_ENV": "production"}
    env.pop("CORTEX_IDENTITY_DATABASE_URL")
    result = subprocess.run(
        [sys.executable, "-m", "identity"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "CORTEX_IDENTITY_DATABASE_URL" in result.stderr
    assert "development default secrets" in result.stderr
