"""The pool after a PostgreSQL restart: stale connections are replaced at checkout, without
SQLAlchemy's pre-ping (which costs BEGIN, a query and ROLLBACK per checkout on asyncpg)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from cortex_dev.embedded import Postgres, free_port
from cortex_runtime.database import Database, UnitOfWork

pytestmark = pytest.mark.integration


async def _backend(db: Database, read_only: bool) -> int:
    async with UnitOfWork(db, read_only=read_only) as uow:
        return int((await uow.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


def test_connections_closed_by_a_restart_are_replaced(tmp_path: Path) -> None:
    postgres = Postgres(tmp_path / "pg", free_port())
    postgres.init()
    postgres.start()
    try:
        url = postgres.admin_url().replace("postgresql://", "postgresql+asyncpg://")

        async def scenario() -> None:
            db = Database(url, pool_size=2)
            try:
                before = {await _backend(db, False), await _backend(db, True)}
                await asyncio.to_thread(postgres.stop)
                await asyncio.to_thread(postgres.start)
                await asyncio.sleep(0.2)  # the pool's sockets see the server's close
                after = {await _backend(db, False), await _backend(db, True)}
                assert not before & after  # new backends, and no error on the way
                async with UnitOfWork(db, read_only=True) as uow:
                    with pytest.raises(RuntimeError):
                        await uow.commit()
            finally:
                await db.dispose()

        asyncio.run(scenario())
    finally:
        postgres.stop()
