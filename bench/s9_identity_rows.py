"""S9: identity's row reads, SQLAlchemy Core against the SQLModel ORM, on one database in one
run (docs/architecture.md, "SQLModel and Core").

Three reads identity serves, each made the ways it could be:

* ``get_settings`` (hot: read-your-writes, availability): one tenant by id on the read-only
  unit of work. Core as identity reads it (``tenants.live``: a statement built once,
  ``TenantRow.model_validate``), Core as identity read it before SQLModel (the statement
  built at each read, a plain frozen dataclass), Core with the table model
  (``Tenant.model_validate``), and the ORM (``session.execute(select(Tenant))``).
* ``verify_api_key`` (hot: every authenticated request the gateway's cache misses): a key's
  credential joined with its live tenant. Core as identity reads it
  (``api_keys.live_credential``, built once), as before, and the ORM
  (``select(ApiKey).join(Tenant)``).
* the activity feed (cold): a page of 50 items. Core (``activity.newest_first``:
  ``ActivityRow`` rows), Core with table models, and the ORM.

The database is a fresh one built by identity's migrations on the given server; the
variants take turns in short rounds (a busy machine slows them alike) and each figure is the
median round: wall time and this process's CPU time, per 1,000 reads. The SQL the database
runs is the same for every variant of a read; what differs is the Python around it.
``python -m bench.s9_identity_rows`` runs it alone on an embedded PostgreSQL (seconds).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlmodel import col

from bench.common import row
from cortex_dev.embedded import Postgres, free_port
from cortex_runtime.database import Database, UnitOfWork
from cortex_runtime.migrations import upgrade
from identity.__main__ import SERVICE_DIR
from identity.adapters import activity, api_keys, tables, tenants
from identity.adapters.tables import Activity, ApiKey, NewTenant, Tenant

ROUNDS = 12
READS = 50  # single-row reads of each variant in a round
PAGES = 10  # feed pages of each variant in a round
PAGE = 50
WARMUP = 30
TENANT = "ten_bench_rows"
PREFIX = "benchrow"


@dataclass(frozen=True, slots=True)
class PlainTenantRow:
    """The tenant row as identity typed it before SQLModel (a frozen slots dataclass)."""

    id: str
    external_id: str | None
    email: str
    display_name: str
    user_type: str
    slug: str | None
    open_scheduling: bool
    timezone: str
    working_hours: dict[str, object]
    booking_rules: dict[str, object]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int


async def seed(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await tenants.insert(
            uow,
            NewTenant(
                id=TENANT,
                external_id=None,
                email="bench-rows@example.com",
                display_name="Bench rows",
                user_type="individual",
                slug="bench-rows",
                timezone="UTC",
                working_hours={d: [{"start": "08:00", "end": "18:00"}] for d in ("mon", "tue")},
                booking_rules={"min_notice_hours": 0, "max_advance_days": 60},
            ),
        )
        await api_keys.insert(
            uow, key_id="key_bench", tenant_id=TENANT, name="bench", prefix=PREFIX,
            secret_hash=b"\x00" * 32,
        )  # fmt: skip
        start = datetime.now(UTC)
        for i in range(PAGE + 10):
            await activity.add_once(
                uow, event_id=f"evt_bench_{i}", tenant_id=TENANT, kind="settings_changed",
                summary=f"Settings changed: working hours ({i})",
                occurred_at=start - timedelta(minutes=i), ids={"tenant_id": TENANT},
            )  # fmt: skip
        await uow.commit()


def reads(db: Database) -> dict[str, dict[str, Callable[[], Awaitable[object]]]]:
    """Each read's variants: an awaitable that makes one read and returns its typed result.

    The Core and ORM variants of a hot read run a statement built once, as identity's
    adapters do; "as before" is identity's code before SQLModel (the statement built at each
    read, a plain dataclass row)."""
    t, k, a = tables.tenants, tables.api_keys, tables.activity
    live_core = sa.select(t).where(t.c.id == sa.bindparam("tenant_id"), t.c.deleted_at.is_(None))
    live_orm = sa.select(Tenant).where(
        col(Tenant.id) == sa.bindparam("tenant_id"), col(Tenant.deleted_at).is_(None)
    )
    credential_orm_query = (
        sa.select(ApiKey)
        .join(Tenant, col(Tenant.id) == col(ApiKey.tenant_id))
        .where(
            col(ApiKey.prefix) == sa.bindparam("prefix"),
            col(ApiKey.revoked_at).is_(None),
            col(Tenant.deleted_at).is_(None),
        )
    )
    by_id = {"tenant_id": TENANT}

    def reader() -> UnitOfWork:
        return UnitOfWork(db, read_only=True)

    async def settings_core() -> object:
        async with reader() as uow:
            return await tenants.live(uow, TENANT)

    async def settings_before() -> object:
        async with reader() as uow:
            query = sa.select(t).where(t.c.id == TENANT, t.c.deleted_at.is_(None))
            found = (await uow.execute(query)).first()
            return PlainTenantRow(**found._mapping) if found is not None else None

    async def settings_table() -> object:
        async with reader() as uow:
            found = (await uow.execute(live_core, by_id)).first()
            return Tenant.model_validate(found._mapping) if found is not None else None

    async def settings_orm() -> object:
        async with reader() as uow:
            return (await uow.session.execute(live_orm, by_id)).scalars().first()

    async def credential_core() -> object:
        async with reader() as uow:
            return await api_keys.live_credential(uow, PREFIX)

    async def credential_before() -> object:
        async with reader() as uow:
            query = (
                sa.select(k.c.id, k.c.tenant_id, k.c.secret_hash)
                .join(t, t.c.id == k.c.tenant_id)
                .where(k.c.prefix == PREFIX, k.c.revoked_at.is_(None), t.c.deleted_at.is_(None))
            )
            found = (await uow.execute(query)).first()
            if found is None:
                return None
            return api_keys.Credential(
                id=found.id, tenant_id=found.tenant_id, secret_hash=found.secret_hash
            )

    async def credential_orm() -> object:
        async with reader() as uow:
            found = await uow.session.execute(credential_orm_query, {"prefix": PREFIX})
            return found.scalars().first()

    # the feed (cold) builds its statement at each read in every variant, as identity does
    async def feed_core() -> object:
        async with reader() as uow:
            return await activity.newest_first(uow, TENANT, PAGE)

    async def feed_table() -> object:
        async with reader() as uow:
            query = (
                sa.select(a)
                .where(a.c.tenant_id == TENANT)
                .order_by(a.c.occurred_at.desc(), a.c.seq.desc())
                .limit(PAGE)
            )
            return [Activity.model_validate(r._mapping) for r in (await uow.execute(query)).all()]

    async def feed_orm() -> object:
        async with reader() as uow:
            query = (
                sa.select(Activity)
                .where(col(Activity.tenant_id) == TENANT)
                .order_by(col(Activity.occurred_at).desc(), col(Activity.seq).desc())
                .limit(PAGE)
            )
            return (await uow.session.execute(query)).scalars().all()

    return {
        "get_settings": {
            "core, TenantRow (identity)": settings_core,
            "core as before (per-read statement, dataclass)": settings_before,
            "core, Tenant table model": settings_table,
            "orm, select(Tenant)": settings_orm,
        },
        "verify_api_key": {
            "core, Credential (identity)": credential_core,
            "core as before (per-read statement)": credential_before,
            "orm, select(ApiKey).join(Tenant)": credential_orm,
        },
        "activity page of 50": {
            "core, ActivityRow (identity)": feed_core,
            "core, Activity table models": feed_table,
            "orm, select(Activity)": feed_orm,
        },
    }


async def measure(database_url: str) -> dict[str, dict[str, dict[str, float]]]:
    db = Database(database_url, pool_size=2)
    try:
        await seed(db)
        variants = reads(db)
        for by_variant in variants.values():
            for one in by_variant.values():
                assert await one() is not None
                for _ in range(WARMUP):
                    await one()
        wall: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for _ in range(ROUNDS):
            for read, by_variant in variants.items():
                n = PAGES if read.startswith("activity") else READS
                for name, one in by_variant.items():
                    w0, c0 = time.perf_counter(), time.process_time()
                    for _ in range(n):
                        await one()
                    # per 1,000 reads, in ms: the mean read in µs
                    wall.setdefault((read, name), []).append((time.perf_counter() - w0) / n * 1e6)
                    cpu.setdefault((read, name), []).append((time.process_time() - c0) / n * 1e6)
        return {
            read: {
                name: {
                    "wall_ms_per_1000": round(statistics.median(wall[read, name])),
                    "cpu_ms_per_1000": round(statistics.median(cpu[read, name])),
                }
                for name in by_variant
            }
            for read, by_variant in variants.items()
        }
    finally:
        await db.dispose()


async def on_server(admin_url: str) -> dict[str, Any]:
    """Measure on a database of its own on the server at ``admin_url`` (a superuser's
    libpq URL), made by identity's migrations and dropped afterwards."""
    name = f"bench_identity_rows_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = admin_url.rpartition("/")
        url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
        await asyncio.to_thread(upgrade, SERVICE_DIR, url)
        figures: dict[str, Any] = await measure(url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    figures["rounds"] = ROUNDS
    figures["reads_each_round"] = {"single-row reads": READS, "feed pages": PAGES}
    return figures


def rows_of(figures: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for read in ("get_settings", "verify_api_key", "activity page of 50"):
        for name, f in figures[read].items():
            out.append(
                row(
                    f"S9 {read} read",
                    f"{name}: ms per 1,000 (CPU)",
                    f"{f['wall_ms_per_1000']} ({f['cpu_ms_per_1000']})",
                )
            )
    return out


def run(postgres: Postgres | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``make bench``: on the stack's own PostgreSQL."""
    if postgres is None:
        raise RuntimeError("S9 needs the stack's embedded PostgreSQL (no superuser URL)")
    figures = asyncio.run(on_server(postgres.admin_url()))
    return figures, rows_of(figures)


def main() -> int:
    """Alone: an embedded PostgreSQL in a temporary directory, then the table."""
    from bench.__main__ import table

    with tempfile.TemporaryDirectory(prefix="cortex-bench-s9-") as tmp:
        server = Postgres(Path(tmp) / "pg", free_port()).start()
        try:
            started = time.monotonic()
            _, new_rows = run(server)
        finally:
            server.stop()
    print(table(new_rows))
    print(f"{ROUNDS} rounds; S9 took {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
