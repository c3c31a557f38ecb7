"""The whole system as processes: what `cortex up` runs and what end-to-end tests start.

NATS and PostgreSQL are embedded unless ``CORTEX_NATS_URL`` and every service's
``CORTEX_<SERVICE>_DATABASE_URL`` are given; then the same services run against those.
Children run in their own sessions, so Ctrl-C reaches only the supervisor, which stops
them in order: gateway, services, then NATS and PostgreSQL. A service that dies is
restarted with a growing delay.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from contracts.subjects import SERVICES
from cortex_dev.embedded import (
    NatsServer,
    Postgres,
    database_url,
    die_with_parent,
    free_port,
    port_is_free,
    provision_databases,
    run_sync,
    stop_process,
)
from cortex_runtime.migrations import upgrade

DEFAULT_NATS_PORT = 14222
DEFAULT_POSTGRES_PORT = 15432
DEFAULT_GATEWAY_PORT = 8000
LOOPBACK = ("127.0.0.0/8", "::1/128")
"""What calendars may reach on this machine under `cortex up` (a local Radicale), except the
stack's own ports (:meth:`Stack.own_endpoints`)."""

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def choose_port(configured: str | None, preferred: int) -> int:
    """The configured port, else ``preferred`` when free, else any free port."""
    if configured:
        port = int(configured)
        if not port_is_free(port):
            raise RuntimeError(f"port {port} is already in use")
        return port
    return preferred if port_is_free(preferred) else free_port()


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_restart: float = 0.0

    def start(self) -> None:
        out = open(self.log_file, "ab")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        finally:
            out.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            stop_process(self.process, sig, timeout=15)


@dataclass
class Stack:
    data_dir: Path
    gateway_port: int = DEFAULT_GATEWAY_PORT
    replicas: Mapping[str, int] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    say: Say = _quiet
    nats: NatsServer | None = None
    postgres: Postgres | None = None
    nats_url: str = ""
    database_urls: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    _gateway_ports: list[int] = field(default_factory=list)

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def gateway_urls(self) -> list[str]:
        """The first gateway on ``gateway_port``, further replicas on the next ports when they
        are free, else on any free port (chosen once)."""
        if not self._gateway_ports:
            ports = [self.gateway_port]
            for i in range(1, self.replicas.get("gateway", 1)):
                wanted = self.gateway_port + i
                ports.append(wanted if port_is_free(wanted) else free_port())
            self._gateway_ports = ports
        return [f"http://127.0.0.1:{port}" for port in self._gateway_ports]

    # --- infrastructure ------------------------------------------------------------
    def start_infrastructure(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        self.nats_url = self.environ.get("CORTEX_NATS_URL", "")
        if self.nats_url:
            self.say(f"NATS: external {self.nats_url}")
        else:
            port = choose_port(self.environ.get("CORTEX_NATS_PORT"), DEFAULT_NATS_PORT)
            started = time.monotonic()
            self.nats = NatsServer(self.data_dir / "nats", port, self.logs_dir / "nats.log").start()
            self.nats_url = self.nats.url
            self.say(f"NATS with JetStream on {self.nats_url} ({time.monotonic() - started:.1f}s)")

        given = {s: self.environ.get(f"CORTEX_{s.upper()}_DATABASE_URL", "") for s in SERVICES}
        self.database_urls = {s: url for s, url in given.items() if url}
        missing = [s for s in SERVICES if s not in self.database_urls]
        if not missing:
            self.say("PostgreSQL: external, one database per service")
            return
        port = choose_port(self.environ.get("CORTEX_POSTGRES_PORT"), DEFAULT_POSTGRES_PORT)
        started = time.monotonic()
        self.postgres = Postgres(self.data_dir / "postgres", port)
        created = self.postgres.init()
        self.postgres.start(self.logs_dir / "postgres.log")
        passwords = self._service_passwords()
        roles = {s: passwords[s] for s in missing}
        run_sync(lambda: provision_databases(self.postgres.admin_url(), roles))  # type: ignore[union-attr]
        for service in missing:
            self.database_urls[service] = database_url(
                service, passwords[service], "127.0.0.1", port, service
            )
        verb = "initialised and started" if created else "started"
        self.say(
            f"PostgreSQL {verb} on 127.0.0.1:{port}, databases {', '.join(missing)} "
            f"({time.monotonic() - started:.1f}s)"
        )

    def _service_passwords(self) -> dict[str, str]:
        path = self.data_dir / "secrets.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        for service in SERVICES:
            stored.setdefault(service, secrets.token_urlsafe(18))
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
        return stored

    # --- services --------------------------------------------------------------------
    def own_endpoints(self) -> list[str]:
        """``network:port`` of every server of this system on this machine: NATS, PostgreSQL
        and the gateways. No CalDAV server_url may reach them, although loopback is allowed."""
        addresses = [
            *(url.strip() for url in self.nats_url.split(",") if url.strip()),
            *self.database_urls.values(),
            *self.gateway_urls,
        ]
        endpoints: list[str] = []
        for address in addresses:
            parsed = httpx.URL(address.replace("postgresql+asyncpg://", "postgresql://", 1))
            host, port = parsed.host, parsed.port
            if port is None:
                continue
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                ip = None
            if host == "localhost" or (ip is not None and ip.is_loopback):
                networks = list(LOOPBACK)
            elif ip is not None:
                networks = [str(ipaddress.ip_network(ip))]
            else:
                continue  # a name elsewhere: what it resolves to is vetted as any other
            for network in networks:
                if f"{network}:{port}" not in endpoints:
                    endpoints.append(f"{network}:{port}")
        return endpoints

    def _caldav_reach(self) -> tuple[str, str]:
        """(allowed private networks, denied endpoints) as calendars gets them."""
        allowed = self.environ.get("CORTEX_CALENDARS_ALLOWED_PRIVATE_NETWORKS", ",".join(LOOPBACK))
        given = self.environ.get("CORTEX_CALENDARS_DENIED_ENDPOINTS", "")
        denied = [e.strip() for e in given.split(",") if e.strip()]
        denied += [e for e in self.own_endpoints() if e not in denied]
        return allowed, ",".join(denied)

    def announce_caldav_reach(self) -> None:
        allowed, denied = self._caldav_reach()
        networks = ", ".join(n.strip() for n in allowed.split(",") if n.strip()) or "none"
        ports = sorted({int(e.rpartition(":")[2]) for e in denied.split(",") if e})
        self.say(
            f"CalDAV servers may be on public addresses and {networks} (development; production "
            f"sets no CORTEX_CALENDARS_ALLOWED_PRIVATE_NETWORKS), never on this system's own "
            f"ports {', '.join(map(str, ports))} (NATS, PostgreSQL, gateways)"
        )

    def env_for(self, service: str) -> dict[str, str]:
        env = {**self.environ, "CORTEX_NATS_URL": self.nats_url, "PYTHONUNBUFFERED": "1"}
        # on one's own machine, a CalDAV server on loopback (a local Radicale) is allowed, but
        # not the ports of this system's own servers
        allowed, denied = self._caldav_reach()
        env["CORTEX_CALENDARS_ALLOWED_PRIVATE_NETWORKS"] = allowed
        env["CORTEX_CALENDARS_DENIED_ENDPOINTS"] = denied
        for name, url in self.database_urls.items():
            if name == service:
                env[f"CORTEX_{name.upper()}_DATABASE_URL"] = url
            else:  # a service sees only its own database
                env.pop(f"CORTEX_{name.upper()}_DATABASE_URL", None)
        return env

    def migrate(self) -> None:
        """Every service's alembic migrations, in this process: one interpreter start and one
        import of SQLAlchemy and alembic instead of four."""
        started = time.monotonic()
        for service in SERVICES:
            service_dir = importlib.import_module(f"{service}.__main__").SERVICE_DIR
            try:
                upgrade(service_dir, self.database_urls[service])
            except Exception as exc:
                raise RuntimeError(f"migrations of {service} failed: {exc}") from exc
        self.say(
            f"migrations applied for {', '.join(SERVICES)} ({time.monotonic() - started:.1f}s)"
        )

    def start_services(self) -> None:
        self.announce_caldav_reach()
        for service in SERVICES:
            for i in range(self.replicas.get(service, 1)):
                self._spawn(
                    f"{service}-{i + 1}", [sys.executable, "-m", service], self.env_for(service)
                )
        gateway_env = self.env_for("gateway")
        for i, url in enumerate(self.gateway_urls):
            port = url.rsplit(":", 1)[1]
            env = {**gateway_env, "CORTEX_GATEWAY_PORT": port}
            self._spawn(f"gateway-{i + 1}", [sys.executable, "-m", "gateway"], env)
        self.say(f"started {len(self.children)} processes; logs in {self.logs_dir}")

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        child = Child(name, args, env, self.logs_dir / f"{name}.log")
        child.start()
        self.children.append(child)
        return child

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_children(restart=False)
            try:
                responses = [httpx.get(f"{u}/ready", timeout=3) for u in self.gateway_urls]
                if all(r.status_code == 200 for r in responses):
                    return
                last = next(r.text for r in responses if r.status_code != 200)
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"the system was not ready after {timeout}s: {last}")

    def check_children(self, restart: bool = True) -> None:
        """Restart any child that died, with a growing delay between attempts."""
        now = time.monotonic()
        for child in self.children:
            if child.alive or child.process is None:
                continue
            if not restart:
                raise RuntimeError(
                    f"{child.name} exited with {child.process.returncode}; see {child.log_file}"
                )
            if child.next_restart == 0.0:
                delay = min(30.0, 0.5 * 2**child.restarts)
                child.next_restart = now + delay
                code = child.process.returncode
                self.say(f"{child.name} exited with {code}; restarting in {delay:.1f}s")
            elif now >= child.next_restart:
                child.restarts += 1
                child.next_restart = 0.0
                child.start()

    def stop(self) -> None:
        self.runtime_file.unlink(missing_ok=True)
        gateways = [c for c in self.children if c.name.startswith("gateway")]
        services = [c for c in self.children if c not in gateways]
        for group in (gateways, services):
            for child in group:
                if child.alive and child.process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        # a paused (SIGSTOPped) child would not act on SIGTERM until resumed
                        child.process.send_signal(signal.SIGCONT)
                        child.process.send_signal(signal.SIGTERM)
            for child in group:
                child.stop()
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()

    @property
    def runtime_file(self) -> Path:
        return self.data_dir / "runtime.json"

    def up(self) -> None:
        self.start_infrastructure()
        self.migrate()
        self.start_services()
        self.wait_ready()
        # where operator commands (`cortex tenant create`, ...) find the running system
        self.runtime_file.write_text(
            json.dumps({"nats_url": self.nats_url, "gateway_urls": self.gateway_urls})
        )


def isolated_environ(**overrides: str) -> dict[str, str]:
    """The environment for a system a test starts: none of this shell's CORTEX_ settings,
    free ports for NATS and PostgreSQL, and per-IP limits raised (every test request comes
    from 127.0.0.1); a test of the limits sets its own."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    environ.update(
        CORTEX_NATS_PORT=str(free_port()),
        CORTEX_POSTGRES_PORT=str(free_port()),
        CORTEX_GATEWAY_RATE_AVAILABILITY_PER_MINUTE="100000",
        CORTEX_GATEWAY_RATE_BOOK_PER_HOUR="100000",
        CORTEX_GATEWAY_RATE_RESOLVE_PER_MINUTE="100000",
        CORTEX_GATEWAY_RATE_TOON_PER_MINUTE="100000",
    )
    environ.update(overrides)
    return environ
