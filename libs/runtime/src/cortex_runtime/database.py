"""The async engine (built in a lifespan, never at import) and the unit of work."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from contracts.envelope import Message
from cortex_runtime import metrics
from cortex_runtime.tables import inbox, outbox


def _refuse_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool checkout: a connection whose server went away (restart, crash, terminated
    backend) is discarded and the pool tries a fresh one, as ``pool_pre_ping`` would."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise DisconnectionError("the database closed this connection")


class Database:
    """One service's connection pool and session factory."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            # SQLAlchemy's pre-ping on asyncpg sends BEGIN, a query and ROLLBACK at every
            # checkout (measured: 7-17 % of a service's samples); a closed socket is what a
            # restarted or killed server leaves, and asyncpg knows it without a round trip
            pool_pre_ping=False,
            pool_recycle=1800,
        )
        event.listen(self.engine.sync_engine, "checkout", _refuse_closed)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # reads that need no transaction (one statement, or several that may see different
        # snapshots): autocommit sends no BEGIN and no ROLLBACK, two round trips fewer
        self.read_sessions = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    async def reachable(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


class UnitOfWork:
    """One transaction: the business change, its outgoing events and its handled messages.

    ``async with uow: ...; await uow.commit()``; leaving without commit rolls back.
    """

    def __init__(
        self,
        db: Database,
        on_events_committed: Callable[[], None] | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self._db = db
        self._on_events_committed = on_events_committed
        self._events = 0
        self._read_only = read_only
        self.session: AsyncSession

    async def __aenter__(self) -> Self:
        if self._read_only:
            # autocommit: every statement is its own transaction; nothing to commit
            self.session = self._db.read_sessions()
        else:
            self.session = self._db.sessions()
            await self.session.begin()
        self._events = 0
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        await self.session.commit()
        if self._events and self._on_events_committed is not None:
            self._on_events_committed()
        self._events = 0

    async def execute(self, statement: sa.Executable, params: Any = None) -> sa.Result[Any]:
        result: sa.Result[Any] = await self.session.execute(statement, params)
        return result

    async def add_event(self, subject: str, event: Message) -> None:
        """Write an event to the outbox, in this transaction."""
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot write events")
        await self.session.execute(
            sa.insert(outbox).values(
                message_id=event.message_id,
                subject=subject,
                payload=event.model_dump_json().encode(),
                headers={"Cortex-Correlation-Id": event.correlation_id},
            )
        )
        self._events += 1

    async def first_delivery(self, consumer: str, message_id: str) -> bool:
        """Record ``message_id`` as handled by ``consumer``; False if it already was.

        A concurrent duplicate waits on the primary key until this transaction ends,
        then sees the row: the effect happens once.
        """
        result = await self.session.execute(
            pg_insert(inbox)
            .values(consumer=consumer, message_id=message_id)
            .on_conflict_do_nothing()
            .returning(inbox.c.message_id)
        )
        return result.first() is not None


# --- advisory locks ----------------------------------------------------------------------


def advisory_lock_statement(
    key: str | sa.ColumnElement[Any], *, namespace: int | None = None, shared: bool = False
) -> sa.Select[Any]:
    """``SELECT pg_advisory_xact_lock[_shared]([namespace, ]hashtext(key))``: a lock on
    ``key`` held until the transaction ends.

    ``key`` is text (``"calendar_events:cal_1"``: the one-key form, the same lock as
    ``pg_advisory_lock(hashtext('calendar_events:cal_1'))`` in a session) or a column
    expression, for a statement that finds its key in a row (add ``.where(...)``: a lock is
    taken for each row selected, none when no row is). ``namespace`` takes the two-key form
    ``(namespace, hashtext(key))``, a lock space of its own. ``shared`` locks are held by
    many transactions at once; an exclusive one waits for all of them, and they for it.
    """
    hashed = sa.func.hashtext(key)
    take = sa.func.pg_advisory_xact_lock_shared if shared else sa.func.pg_advisory_xact_lock
    return sa.select(take(hashed) if namespace is None else take(namespace, hashed))


async def advisory_lock(
    uow: UnitOfWork, key: str, *, namespace: int | None = None, shared: bool = False
) -> None:
    """Take :func:`advisory_lock_statement`'s lock in ``uow``'s transaction (it waits for a
    conflicting holder); released when the unit of work commits or rolls back."""
    if uow._read_only:
        raise RuntimeError("a read-only unit of work has no transaction to hold a lock in")
    await uow.execute(advisory_lock_statement(key, namespace=namespace, shared=shared))


# --- errors PostgreSQL reports -----------------------------------------------------------


def constraint_name(exc: BaseException) -> str:
    """The constraint an integrity error names (``"tenants_live_email"``), or ``""``.

    SQLAlchemy's ``IntegrityError`` wraps the DBAPI adapter's error (``exc.orig``), whose
    ``__cause__`` is asyncpg's error carrying ``constraint_name``; the adapter's error, or a
    driver error given directly, are looked at too."""
    orig = getattr(exc, "orig", None)
    for candidate in (getattr(orig, "__cause__", None), orig, exc):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return str(name)
    return ""


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


T = TypeVar("T")
RETRIED_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure


def lost_a_race(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock or a serialization
    conflict: the transaction did nothing, and running it again is the documented remedy."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return False
        if getattr(current, "sqlstate", None) in RETRIED_SQLSTATES:
            return True
        current = current.__cause__ or current.__context__
    return False


async def retry_lost_races(transaction: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Run ``transaction`` (a whole unit of work, begun and ended inside it) again when
    PostgreSQL aborted it to break a deadlock or a serialization conflict (:func:`lost_a_race`);
    any other error, or the last attempt's, is raised. The aborted attempt left nothing
    behind, and the retry finds the other transaction's outcome committed. (Booking's sagas
    are where this happens: see the slot locks in its handlers.)"""
    for attempt in range(1, attempts + 1):
        try:
            return await transaction()
        except DBAPIError as exc:
            if attempt == attempts or not lost_a_race(exc):
                raise
            metrics.increment("transactions_retried")
            await asyncio.sleep(random.uniform(0, 0.02 * attempt))  # noqa: S311 (jitter)
    raise AssertionError("unreachable")  # pragma: no cover
