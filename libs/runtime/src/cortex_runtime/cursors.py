"""Opaque cursors for keyset pagination: the last item of a page as ``(datetime, key)``.

A cursor is ``<kind>:<microseconds since 1970 UTC>:<key>`` in base64url without padding
(:data:`contracts.formats.BASE64URL`). ``kind`` names the list it pages through, so that a
cursor of one list is refused by another; the key is the tie-breaker after the time (a
text id, or a whole number such as a sequence). Identity's activity cursors (kind ``a``,
integer keys) have had this form from the start.

Anything that is not a cursor this module wrote for that kind (garbage, another kind, a
number out of range, a control character) is :func:`invalid_cursor`, an ``invalid`` error
reply, never a failure further down.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Final, overload

from contracts.formats import BASE64URL
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
END: Final = datetime(9999, 1, 1, tzinfo=UTC)
"""Cursor times lie in ``[EPOCH, END)``."""
MAX_INT_KEY: Final = 2**63 - 1  # a PostgreSQL bigint

_MICRO: Final = timedelta(microseconds=1)
_KIND: Final = re.compile(r"[a-z0-9_]{1,20}")
_BASE64URL: Final = re.compile(BASE64URL)


def invalid_cursor() -> ServiceError:
    return ServiceError(ErrorKind.INVALID, "invalid_cursor", "The cursor is not valid.")


def encode_cursor(kind: str, at: datetime, key: str | int) -> str:
    """The cursor after the item ``(at, key)`` of the list ``kind``.

    ``at`` must carry an offset and lie in ``[EPOCH, END)``; an integer key in
    ``0..MAX_INT_KEY``; a text key be non-empty and printable. (A ``ValueError`` says which:
    the caller's bug, never the client's.)"""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"A cursor kind is 1-20 of a-z, 0-9 and _, not {kind!r}.")
    if at.utcoffset() is None:
        raise ValueError("A cursor's time must carry a time zone offset.")
    if not EPOCH <= at < END:
        raise ValueError(f"A cursor's time lies in [{EPOCH}, {END}), not {at}.")
    if isinstance(key, bool) or (isinstance(key, int) and not 0 <= key <= MAX_INT_KEY):
        raise ValueError(f"An integer cursor key lies in 0..{MAX_INT_KEY}, not {key!r}.")
    if isinstance(key, str) and (not key or not key.isprintable()):
        raise ValueError(f"A text cursor key is non-empty and printable, not {key!r}.")
    micros = (at - EPOCH) // _MICRO
    raw = f"{kind}:{micros}:{key}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@overload
def decode_cursor(text: str, *, kind: str, key: type[str] = ...) -> tuple[datetime, str]: ...
@overload
def decode_cursor(text: str, *, kind: str, key: type[int]) -> tuple[datetime, int]: ...
def decode_cursor(
    text: str, *, kind: str, key: type[str] | type[int] = str
) -> tuple[datetime, str] | tuple[datetime, int]:
    """``(at, key)`` of a cursor :func:`encode_cursor` wrote for ``kind`` (``at`` in UTC;
    ``key=int`` for integer keys); :func:`invalid_cursor` for anything else."""
    try:
        if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
            raise ValueError("not base64url")
        padded = text + "=" * (-len(text) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
        found_kind, micros_text, key_text = raw.split(":", 2)
        if found_kind != kind or not _digits(micros_text) or not key_text:
            raise ValueError("not this kind of cursor")
        at = EPOCH + int(micros_text) * _MICRO
        if at >= END:
            raise ValueError("out of range")
        if key is int:
            if not _digits(key_text) or int(key_text) > MAX_INT_KEY:
                raise ValueError("not an integer key")
            return at, int(key_text)
        if not key_text.isprintable():
            raise ValueError("not a printable key")
        return at, key_text
    except (ValueError, OverflowError) as exc:  # UnicodeDecodeError, binascii.Error included
        raise invalid_cursor() from exc


def _digits(text: str) -> bool:
    """ASCII digits only (``int()`` would take signs, spaces, ``_`` and other scripts)."""
    return 0 < len(text) <= 20 and text.isascii() and text.isdigit()
