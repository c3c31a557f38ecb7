"""Identity's SQLModel table models and its migrations describe the same schema.

The migrations are written by hand and frozen; the models (``identity.adapters.tables``) are
what the code and ``migrations/env.py`` use. On a database the real migrations built:
alembic's autogenerate (through the service's own env.py, and ``compare_metadata`` with
server defaults compared too) finds nothing to change; and a database made from the models
by ``create_all`` has the same columns, defaults, indexes and constraints, names included,
in PostgreSQL's own catalog.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from cortex_dev.embedded import run_sync
from cortex_dev.pytest_plugin import PostgresInfo, query
from cortex_runtime.migrations import alembic_config
from cortex_runtime.tables import MESSAGING
from identity.__main__ import SERVICE_DIR
from identity.adapters.tables import metadata

pytestmark = pytest.mark.integration

TABLES = ["tenants", "api_keys", "activity"]

CATALOG = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default,
               is_identity, identity_generation
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = ANY($1::text[])""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename = ANY($1::text[])""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
          AND conrelid::regclass::text = ANY($1::text[])""",
}


@pytest.fixture
def migrated(service_database: Callable[[str], str]) -> str:
    """A fresh database that identity's migrations built (``python -m identity migrate``)."""
    return service_database("identity")


@pytest.fixture
def from_models(cortex_postgres: PostgresInfo) -> Iterator[str]:
    """A fresh database with nothing but ``metadata.create_all`` of the models."""
    name = f"t_identity_models_{uuid.uuid4().hex[:12]}"
    cortex_postgres.execute(f'CREATE DATABASE "{name}"')
    url = cortex_postgres.url_for(name)

    async def create() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        finally:
            await engine.dispose()

    run_sync(create)
    yield url
    cortex_postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def diffs(url: str, target: Any) -> list[Any]:
    """What autogenerate would change in the database at ``url`` to match ``target``."""

    async def compare() -> list[Any]:
        engine = create_async_engine(url)

        def run(connection: sa.Connection) -> list[Any]:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, target))

        try:
            async with engine.connect() as conn:
                return await conn.run_sync(run)
        finally:
            await engine.dispose()

    return run_sync(compare)


def catalog(url: str) -> dict[str, set[tuple[Any, ...]]]:
    async def read() -> dict[str, set[tuple[Any, ...]]]:
        return {
            what: {tuple(row) for row in await query(url, sql, TABLES)}
            for what, sql in CATALOG.items()
        }

    return run_sync(read)


def test_the_migrations_env_finds_nothing_to_generate(migrated: str) -> None:
    """``alembic check`` through the service's own env.py (its metadata beside the
    runtime's outbox and inbox): raises if autogenerate would write a migration."""
    command.check(alembic_config(SERVICE_DIR, migrated))


def test_the_migrated_database_matches_the_models(migrated: str) -> None:
    assert diffs(migrated, [metadata, MESSAGING]) == []


def test_the_comparison_sees_a_changed_column(migrated: str) -> None:
    """The comparison above is not blind: a model whose server default, type, nullability
    or index differs from the migrations is reported."""
    changed = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    tenants = changed.tables["tenants"]
    tenants.c.version.server_default = sa.DefaultClause("2")
    tenants.c.timezone.type = sa.String(64)
    tenants.c.slug.nullable = False
    changed.tables["api_keys"].indexes.clear()
    reported = {
        diff[0] if isinstance(diff, tuple) else diff[0][0]
        for diff in diffs(migrated, [changed, MESSAGING])
    }
    assert reported == {"modify_default", "modify_type", "modify_nullable", "remove_index"}


def test_the_models_create_what_the_migrations_create(migrated: str, from_models: str) -> None:
    built_by_migrations = catalog(migrated)
    built_from_models = catalog(from_models)
    for what in CATALOG:
        assert built_from_models[what] == built_by_migrations[what], what
    names = {row[1] for row in built_by_migrations["indexes"]}
    assert {"tenants_live_email", "tenants_slug", "tenants_external_id", "api_keys_tenant",
            "activity_tenant_time", "api_keys_prefix_key", "activity_event_id_key"} <= names  # fmt: skip
