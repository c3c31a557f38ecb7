"""A transaction PostgreSQL aborts to break a deadlock is run again, and succeeds."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from cortex_dev.pytest_plugin import PostgresInfo
from cortex_runtime.database import Database, UnitOfWork, lost_a_race, retry_lost_races

pytestmark = pytest.mark.integration

BUMP = sa.text("UPDATE race SET n = n + 1 WHERE id = :id")


def _race_table(service_database: Callable[[str], str], postgres: PostgresInfo) -> str:
    url = service_database("identity")
    postgres.execute(
        "CREATE TABLE race (id int PRIMARY KEY, n int NOT NULL)",
        "INSERT INTO race VALUES (1, 0), (2, 0)",
        database=url.rsplit("/", 1)[1],
    )
    return url


async def _opposite_orders(db: Database, retry: bool) -> Counter[str]:
    """Two transactions lock rows 1 and 2 in opposite orders, each waiting until the other
    holds its first row: a deadlock on their first run. The runs of each."""
    holding = asyncio.Barrier(2)
    runs: Counter[str] = Counter()

    def transaction(name: str, first: int, second: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            runs[name] += 1
            async with UnitOfWork(db) as uow:
                await uow.execute(BUMP, {"id": first})
                if runs[name] == 1:
                    await holding.wait()
                await uow.execute(BUMP, {"id": second})
                await uow.commit()

        return run

    both = [transaction("a", 1, 2), transaction("b", 2, 1)]
    if retry:
        await asyncio.gather(*(retry_lost_races(t) for t in both))
    else:
        await asyncio.gather(*(t() for t in both))
    return runs


def _on_race_table(
    service_database: Callable[[str], str],
    postgres: PostgresInfo,
    scenario: Callable[[Database], Awaitable[None]],
) -> None:
    url = _race_table(service_database, postgres)

    async def run() -> None:
        db = Database(url, pool_size=4)
        try:
            await scenario(db)
        finally:
            await db.dispose()

    asyncio.run(run())


def test_the_deadlock_victim_runs_again(
    service_database: Callable[[str], str], cortex_postgres: PostgresInfo
) -> None:
    async def scenario(db: Database) -> None:
        runs = await _opposite_orders(db, retry=True)
        assert sorted(runs.values()) == [1, 2]  # one of them was the victim, once
        async with UnitOfWork(db, read_only=True) as uow:
            counts = (await uow.execute(sa.text("SELECT n FROM race ORDER BY id"))).all()
        assert [c.n for c in counts] == [2, 2]  # both took effect, exactly once

    _on_race_table(service_database, cortex_postgres, scenario)


def test_without_the_retry_the_victim_fails(
    service_database: Callable[[str], str], cortex_postgres: PostgresInfo
) -> None:
    async def scenario(db: Database) -> None:
        with pytest.raises(DBAPIError) as raised:
            await _opposite_orders(db, retry=False)
        assert lost_a_race(raised.value)
        assert not lost_a_race(ValueError("something else"))

    _on_race_table(service_database, cortex_postgres, scenario)
