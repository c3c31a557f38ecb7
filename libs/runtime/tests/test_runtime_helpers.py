"""What every service repeated, once in the runtime: the tenant a request must name,
advisory-lock statements, the constraint an integrity error names, opaque cursors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.exc import IntegrityError

from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.cursors import END, EPOCH, MAX_INT_KEY, decode_cursor, encode_cursor
from cortex_runtime.database import advisory_lock_statement, constraint_name
from cortex_runtime.errors import ServiceError, require_tenant, tenant_required

# --- a tenant is required --------------------------------------------------------------------


def test_the_tenant_a_request_names() -> None:
    assert require_tenant(Message(tenant_id="tn_0123456789abcdef0123")) == "tn_0123456789abcdef0123"


@pytest.mark.parametrize("tenant_id", [None, ""])
def test_a_request_naming_no_tenant_is_unauthorized(tenant_id: str | None) -> None:
    with pytest.raises(ServiceError) as refused:
        require_tenant(Message(tenant_id=tenant_id))
    assert (refused.value.kind, refused.value.code) == (ErrorKind.UNAUTHORIZED, "tenant_required")
    assert str(refused.value) == refused.value.reply.message == "The request names no tenant."
    assert tenant_required() is not tenant_required()  # a fresh error (and traceback) each time


# --- advisory locks ------------------------------------------------------------------------------


POSTGRESQL = PGDialect()  # type: ignore[no-untyped-call]


def sql(statement: sa.Select[Any]) -> str:
    return " ".join(str(statement.compile(dialect=POSTGRESQL)).split())


def bound(statement: sa.Select[Any]) -> list[Any]:
    return list(statement.compile(dialect=POSTGRESQL).params.values())


bookings = sa.table("bookings", sa.column("id"), sa.column("tenant_id"))


def test_the_one_key_form_is_the_lock_sessions_take_on_hashtext() -> None:
    """Calendars' and booking's callers' locks: ``hashtext(key)``, the key a session's
    ``pg_advisory_lock(hashtext('booking_event:bk_1'))`` (calendars' tests) takes too."""
    statement = advisory_lock_statement("booking_event:bk_1")
    by_hand = sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("booking_event:bk_1")))
    assert sql(statement) == sql(by_hand)
    assert sql(statement).startswith("SELECT pg_advisory_xact_lock(hashtext(")
    assert bound(statement) == ["booking_event:bk_1"]
    shared = advisory_lock_statement("k", shared=True)
    assert sql(shared).startswith("SELECT pg_advisory_xact_lock_shared(hashtext(")


def test_the_two_key_form_takes_a_namespace_and_a_column() -> None:
    """Booking's slot locks: ``(0x5107, hashtext(tenant))``, from a value or a row."""
    by_value = advisory_lock_statement("tn_1", namespace=0x5107)
    assert sql(by_value) == sql(
        sa.select(sa.func.pg_advisory_xact_lock(0x5107, sa.func.hashtext("tn_1")))
    )
    assert bound(by_value) == [0x5107, "tn_1"]
    of_row = advisory_lock_statement(bookings.c.tenant_id, namespace=0x5107, shared=True).where(
        bookings.c.id == "bk_1"
    )
    # the statement booking's handlers build by hand today, exactly
    by_hand = sa.select(
        sa.func.pg_advisory_xact_lock_shared(0x5107, sa.func.hashtext(bookings.c.tenant_id))
    ).where(bookings.c.id == "bk_1")
    assert sql(of_row) == sql(by_hand)
    assert "hashtext(bookings.tenant_id)" in sql(of_row)
    assert "FROM bookings WHERE bookings.id = " in sql(of_row)


# --- constraint names ------------------------------------------------------------------------


class DriverError(Exception):
    def __init__(self, constraint: str | None) -> None:
        super().__init__("duplicate key")
        self.constraint_name = constraint


def integrity_error(adapter: BaseException) -> IntegrityError:
    return IntegrityError("INSERT ...", {}, adapter)


def test_the_constraint_an_integrity_error_names() -> None:
    adapter = Exception("adapter")
    adapter.__cause__ = DriverError("tenants_live_email")  # SQLAlchemy's asyncpg adapter
    assert constraint_name(integrity_error(adapter)) == "tenants_live_email"
    assert constraint_name(integrity_error(DriverError("callers_tenant_email"))) == (
        "callers_tenant_email"
    )
    assert constraint_name(DriverError("bookings_pkey")) == "bookings_pkey"


def test_no_constraint_is_the_empty_name() -> None:
    assert constraint_name(integrity_error(Exception("no name"))) == ""
    blank = Exception("adapter")
    blank.__cause__ = DriverError(None)
    assert constraint_name(integrity_error(blank)) == ""
    assert constraint_name(ValueError("not a database error")) == ""


# --- cursors ---------------------------------------------------------------------------------

AT = datetime(2026, 3, 15, 14, 0, 0, 123456, tzinfo=UTC)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_cursors_round_trip() -> None:
    cursor = encode_cursor("b", AT, "bk_0123456789abcdef0123")
    assert decode_cursor(cursor, kind="b") == (AT, "bk_0123456789abcdef0123")
    assert decode_cursor(encode_cursor("a", AT, 42), kind="a", key=int) == (AT, 42)
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    at, _ = decode_cursor(encode_cursor("b", plus_two, "x"), kind="b")
    assert at == AT and at.tzinfo is UTC
    assert decode_cursor(encode_cursor("b", EPOCH, "a:b"), kind="b") == (EPOCH, "a:b")


def test_activity_cursors_keep_the_form_identity_issued() -> None:
    """Identity's activity cursors were ``a:<micros>:<seq>``: those already handed out read."""
    micros = (AT - EPOCH) // timedelta(microseconds=1)
    issued = b64(f"a:{micros}:7".encode())
    assert encode_cursor("a", AT, 7) == issued
    assert decode_cursor(issued, kind="a", key=int) == (AT, 7)


@pytest.mark.parametrize(
    "cursor",
    [
        "", "not a cursor!", "YQ", "a+b/", "abcde",  # not base64url, or not a length it has
        b64(b"b:1"),  # identity's e2e: another kind
        b64(b"a:x"), b64(b"a:99999999999999999999"),  # not a number, beyond int64
        b64(b"a:1:7"), b64(b"b:1:"),  # the wrong kind for decode(kind="b"), no key
        b64(b"b:-1:x"), b64(b"b:+1:x"), b64(b"b: 1:x"), b64(b"b:1_0:x"),  # int() would take
        b64("b:\u0661:x".encode()),  # an Arabic-Indic digit
        b64(f"b:{(END - EPOCH) // timedelta(microseconds=1)}:x".encode()),  # year 9999
        b64(b"b:999999999999999999999999:x"),  # beyond what a datetime holds
        b64(b"b:1:bk\x00"), b64(b"b:1:\n"),  # a key PostgreSQL would choke on
        b64(b"\xff\xfe:1:x"),  # not UTF-8
    ],
)  # fmt: skip
def test_what_is_no_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(ServiceError) as refused:
        decode_cursor(cursor, kind="b")
    assert (refused.value.kind, refused.value.code) == (ErrorKind.INVALID, "invalid_cursor")
    assert refused.value.reply.message == "The cursor is not valid."


@pytest.mark.parametrize(
    "cursor",
    [b64(b"a:1:x"), b64(b"a:1:-1"), b64(f"a:1:{MAX_INT_KEY + 1}".encode()), b64(b"a:1:")],
)
def test_integer_keys_are_whole_numbers_of_a_bigint(cursor: str) -> None:
    with pytest.raises(ServiceError) as refused:
        decode_cursor(cursor, kind="a", key=int)
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    ("kind", "at", "key"),
    [
        ("b:", AT, "x"), ("", AT, "x"), ("B", AT, "x"),
        ("b", AT.replace(tzinfo=None), "x"),  # naive
        ("b", EPOCH - timedelta(microseconds=1), "x"), ("b", END, "x"),
        ("a", AT, -1), ("a", AT, MAX_INT_KEY + 1), ("a", AT, True),
        ("b", AT, ""), ("b", AT, "bk\x00"),
    ],
)  # fmt: skip
def test_a_cursor_that_would_not_read_back_is_not_written(
    kind: str, at: datetime, key: str | int
) -> None:
    with pytest.raises(ValueError):
        encode_cursor(kind, at, key)


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)),
    st.one_of(st.integers(0, MAX_INT_KEY), st.text(min_size=1, max_size=40).filter(str.isprintable)),
)  # fmt: skip
def test_every_cursor_written_reads_back(at: datetime, key: str | int) -> None:
    cursor = encode_cursor("k", at, key)
    assert len(cursor) <= 200  # what ListActivity.cursor and ListBookings.cursor take
    decoded = decode_cursor(cursor, kind="k", key=int) if isinstance(key, int) else None
    assert (decoded or decode_cursor(cursor, kind="k")) == (at, key)
