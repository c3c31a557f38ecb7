"""Which handler failures are a dependency that cannot be reached (503, retry) rather than a
bug (500). Regression: a PostgreSQL restart answered every request 500 internal_error."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy.exc

from cortex_runtime.broker import unreachable


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        _raised_from(RuntimeError("pool"), ConnectionResetError(104, "reset by peer")),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        sqlalchemy.exc.DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True),
    ],
)
def test_connection_failures_are_unreachable(exc: BaseException) -> None:
    assert unreachable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("x"),
        sqlalchemy.exc.DBAPIError(
            "SELECT 1", None, Exception("syntax"), connection_invalidated=False
        ),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
    ],
)
def test_bugs_and_data_errors_are_not(exc: BaseException) -> None:
    assert not unreachable(exc)
