"""The runtime's advisory locks and constraint names against a real PostgreSQL: a lock
taken with :func:`advisory_lock` is the one a session takes on ``hashtext(key)`` (what the
calendars tests hold by hand), held until the unit of work ends; an integrity error names
its constraint."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cortex_dev.pytest_plugin import PostgresInfo
from cortex_runtime.database import (
    Database,
    UnitOfWork,
    advisory_lock,
    advisory_lock_statement,
    constraint_name,
)

pytestmark = pytest.mark.integration

SLOTS = 0x5107


def _run(
    service_database: Callable[[str], str],
    postgres: PostgresInfo,
    scenario: Callable[[Database], Awaitable[None]],
) -> None:
    url = service_database("identity")
    postgres.execute(
        "CREATE TABLE things (id int PRIMARY KEY, owner text NOT NULL,"
        " name text NOT NULL, CONSTRAINT things_owner_name UNIQUE (owner, name))",
        "INSERT INTO things VALUES (1, 'tn_1', 'a')",
        database=url.rsplit("/", 1)[1],
    )

    async def run() -> None:
        db = Database(url, pool_size=4)
        try:
            await scenario(db)
        finally:
            await db.dispose()

    asyncio.run(run())


async def _try(db: Database, statement: str, **params: object) -> bool:
    """Whether another transaction can take the lock now (it never waits)."""
    async with UnitOfWork(db) as uow:
        return bool((await uow.execute(sa.text(statement), params)).scalar_one())


def test_a_lock_is_held_until_the_unit_of_work_ends(
    service_database: Callable[[str], str], cortex_postgres: PostgresInfo
) -> None:
    async def scenario(db: Database) -> None:
        one_key = "SELECT pg_try_advisory_xact_lock(hashtext(:key))"
        async with UnitOfWork(db) as uow:
            await advisory_lock(uow, "booking_event:bk_1")
            assert not await _try(db, one_key, key="booking_event:bk_1")
            shared = "SELECT pg_try_advisory_xact_lock_shared(hashtext(:key))"
            assert not await _try(db, shared, key="booking_event:bk_1")  # exclusive
            assert await _try(db, one_key, key="booking_event:bk_2")  # another key is free
            await uow.commit()
        assert await _try(db, one_key, key="booking_event:bk_1")
        async with UnitOfWork(db) as uow:
            await advisory_lock(uow, "booking_event:bk_1")
            assert not await _try(db, one_key, key="booking_event:bk_1")
        # left without commit: rolled back, released
        assert await _try(db, one_key, key="booking_event:bk_1")

    _run(service_database, cortex_postgres, scenario)


def test_shared_locks_in_a_namespace(
    service_database: Callable[[str], str], cortex_postgres: PostgresInfo
) -> None:
    async def scenario(db: Database) -> None:
        exclusive = "SELECT pg_try_advisory_xact_lock(:ns, hashtext(:key))"
        shared = "SELECT pg_try_advisory_xact_lock_shared(:ns, hashtext(:key))"
        async with UnitOfWork(db) as uow:
            await advisory_lock(uow, "tn_1", namespace=SLOTS, shared=True)
            assert await _try(db, shared, ns=SLOTS, key="tn_1")  # shared with shared
            assert not await _try(db, exclusive, ns=SLOTS, key="tn_1")
            one_key = "SELECT pg_try_advisory_xact_lock(hashtext(:key))"
            assert await _try(db, one_key, key="tn_1")  # the one-key space is another
        async with UnitOfWork(db) as uow:
            # the key read from a row, as booking's slot lock of a booking does
            things = sa.table("things", sa.column("id"), sa.column("owner"))
            statement = advisory_lock_statement(things.c.owner, namespace=SLOTS)
            await uow.execute(statement.where(things.c.id == 1))
            assert not await _try(db, shared, ns=SLOTS, key="tn_1")
            await uow.execute(statement.where(things.c.id == 2))  # no row: no lock, no wait

    _run(service_database, cortex_postgres, scenario)


def test_a_waiting_lock_is_granted_when_the_holder_ends(
    service_database: Callable[[str], str], cortex_postgres: PostgresInfo
) -> None:
    async def scenario(db: Database) -> None:
        order: list[str] = []
        held = asyncio.Event()

        async def first() -> None:
            async with UnitOfWork(db) as uow:
                await advisory_lock(uow, "calendar_events:cal_1")
                held.set()
                await asyncio.sleep(0.3)
                order.append("first done")
                await uow.commit()

        async def second() -> None:
            await held.wait()
            async with UnitOfWork(db) as uow:
                await advisory_lock(uow, "calendar_events:cal_1")
                order.append("second locked")
                await uow.commit()

        await asyncio.gather(first(), second())
        assert order == ["first done", "second locked"]

    _run(service_database, cortex_postgres, scenario)


def test_a_read_only_unit_of_work_holds_no_lock(
    service_database: Callable[[str], str], cortex_postgres: PostgresInfo
) -> None:
    async def scenario(db: Database) -> None:
        async with UnitOfWork(db, read_only=True) as uow:
            with pytest.raises(RuntimeError):
                await advisory_lock(uow, "k")

    _run(service_database, cortex_postgres, scenario)


def test_an_integrity_error_names_its_constraint(
    service_database: Callable[[str], str], cortex_postgres: PostgresInfo
) -> None:
    async def scenario(db: Database) -> None:
        insert = sa.text("INSERT INTO things VALUES (:id, :owner, :name)")
        for row, name in (
            ({"id": 2, "owner": "tn_1", "name": "a"}, "things_owner_name"),
            ({"id": 1, "owner": "tn_2", "name": "b"}, "things_pkey"),
        ):
            with pytest.raises(IntegrityError) as raised:
                async with UnitOfWork(db) as uow:
                    await uow.execute(insert, row)
            assert constraint_name(raised.value) == name
        with pytest.raises(IntegrityError) as raised:
            async with UnitOfWork(db) as uow:
                await uow.execute(insert, {"id": 3, "owner": None, "name": "c"})
        assert constraint_name(raised.value) == ""  # NOT NULL names a column, not a constraint

    _run(service_database, cortex_postgres, scenario)
