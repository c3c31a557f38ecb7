"""The shapes of values that cross the services' boundaries: ids, slugs, e-mail addresses,
times of day, weekdays, time zones and policy condition values.

Each pattern states what the owning service accepts, so that the gateway's OpenAPI
document (and the validation of its path parameters) says the same as the service that
checks the value: a value that matches is well formed (it may still be unknown, or refused
by a rule about the data, such as a slug that is taken). Patterns are written for both
Python's ``re`` and JSON Schema's ECMA-262 dialect (no lookbehind, no ``\\Z``).

The facts several services check are owned here, once: what an e-mail address is
(:func:`parse_email`, :func:`normalise_email`, :data:`EmailAddress`), what a time of day is
(:func:`parse_hhmm`, :data:`TimeOfDay`), the weekdays (:data:`WEEKDAYS`). A value they refuse
raises :class:`InvalidValue` (a ``ValueError`` with a machine ``code`` and a sentence safe to
show), which a service turns into its ``invalid`` error reply.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Final, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field

from contracts.policies import ConditionType, TrustLevel
from contracts.text import shown


class InvalidValue(ValueError):
    """A value a shared rule refuses: ``code`` for machines, ``str(exc)`` a sentence safe to
    show (it quotes the value only cleaned)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidEmail(InvalidValue):
    def __init__(self, value: str) -> None:
        super().__init__("invalid_email", f"'{shown(value)}' is not an e-mail address.")


class InvalidTimeOfDay(InvalidValue):
    def __init__(self, value: str, *, allow_24: bool) -> None:
        last = "24:00" if allow_24 else "23:59"
        super().__init__(
            "invalid_time_of_day", f"'{shown(value)}' is not a time of day HH:MM (00:00 to {last})."
        )


# --- ids -------------------------------------------------------------------------------------

ID_HEX_DIGITS: Final = 20
"""Every id is ``<prefix>_<20 lowercase hex digits>`` (80 random or hashed bits)."""


class IdPrefix(StrEnum):
    TENANT = "tn"  # identity
    API_KEY = "key"  # identity
    CALLER = "clr"  # booking
    POLICY = "pol"  # booking
    BOOKING = "bk"  # the gateway mints it (random, or derived from an Idempotency-Key)
    CONNECTION = "conn"  # calendars
    CALENDAR = "cal"  # calendars


def id_pattern(prefix: IdPrefix) -> str:
    return f"^{prefix.value}_[0-9a-f]{{{ID_HEX_DIGITS}}}$"


def new_id(prefix: IdPrefix) -> str:
    return f"{prefix.value}_{secrets.token_hex(ID_HEX_DIGITS // 2)}"


# --- slugs and addresses ---------------------------------------------------------------------

SLUG_MIN: Final = 3
SLUG_MAX: Final = 63
SLUG_PATTERN: Final = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
"""A slug as identity stores it: lowercase letters, digits, single inner hyphens, 3-63."""
PAGE_SLUG_PATTERN: Final = r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$"
"""A slug in a public page's path: looked up case-insensitively."""

EMAIL_MAX: Final = 320
EMAIL_PATTERN: Final = r"^[A-Za-z0-9._%+'-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z0-9-]{1,63}$"
"""An e-mail address identity and booking accept, in ASCII: they take more (any characters
but ``@`` and spaces around one ``@`` and a dot, once control and invisible characters are
dropped), which no pattern both dialects read alike can say; fields that hold an address
state ``format: email``, this is for text that holds one among other forms."""

_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")
_EMAIL_DROPPED: Final = "Cf"  # format: zero-width spaces and joiners, bidi marks, BOM
_EMAIL_REFUSED: Final = frozenset({"Cc", "Co", "Cs"})  # control, private-use, surrogates


def _email_text(text: str) -> str:
    """``text`` without format characters (anywhere) and surrounding whitespace."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) != _EMAIL_DROPPED)
    return kept.strip()


def parse_email(text: str) -> str:
    """The e-mail address ``text`` holds, its case kept; :class:`InvalidEmail` otherwise.

    Invisible format characters (zero-width spaces, joiners, bidi marks: what copying and
    pasting leaves) are dropped and surrounding whitespace is stripped. What is left is an
    address when it is at most :data:`EMAIL_MAX` characters of one ``@`` between 1-64
    characters and a domain with a dot (1-255 characters, a dot, 1-63), with no whitespace,
    and no control, private-use or surrogate character anywhere: a NUL, a line break or an
    escape inside an address is refused, never silently dropped (the address is stored,
    shown to the owner and written into calendar invitations).
    """
    address = _email_text(text)
    if (
        len(address) > EMAIL_MAX
        or _EMAIL.fullmatch(address) is None
        or any(unicodedata.category(ch) in _EMAIL_REFUSED for ch in address)
    ):
        raise InvalidEmail(text)
    return address


def normalise_email(text: str) -> str:
    """The form two addresses are compared in (lookups, uniqueness, policy matching): format
    characters and surrounding whitespace dropped as :func:`parse_email` drops them, then
    lower case (``str.lower``, as PostgreSQL's ``lower()`` that the unique indexes use). It
    validates nothing: text that is no address normalises to text no address equals."""
    return _email_text(text).lower()


def email_domain(address: str) -> str:
    """The domain of an address, lower case, without a trailing dot."""
    return address.rpartition("@")[2].strip().lower().rstrip(".")


EmailAddress = Annotated[
    str,
    Field(max_length=EMAIL_MAX, json_schema_extra={"format": "email"}),
    AfterValidator(parse_email),
]
"""A pydantic field type: an address as :func:`parse_email` reads it (the value is the parsed
address); JSON Schema ``format: email``, at most 320 characters."""

BASE64URL: Final = r"^[A-Za-z0-9_-]+$"
"""base64url without padding: cursors and OAuth states the services issue."""

VISIBLE_TEXT: Final = r"\S"
"""Text that keeps a character once cleaned (``cortex_runtime.text.clean_text``)."""


# --- times of day and weekdays ------------------------------------------------------------

_HOUR = "[01][0-9]|2[0-3]"
_MINUTE = "[0-5][0-9]"
HHMM: Final = rf"(?:{_HOUR}):{_MINUTE}"
"""A time of day ``HH:MM`` from 00:00 to 23:59, as a fragment of a larger pattern."""
TIME_OF_DAY_PATTERN: Final = rf"^{HHMM}$"
"""``HH:MM``, 00:00 to 23:59: a moment of a day (the start of an interval)."""
TIME_OF_DAY_OR_END_PATTERN: Final = rf"^({_HOUR}):{_MINUTE}$|^24:00$"
"""``HH:MM``, 00:00 to 24:00: ``24:00`` is the end of the day, allowed where an interval
ends (working hours' ``start`` and ``end`` both state it; identity refuses a start at 24:00
with its own sentence)."""
MINUTES_PER_DAY: Final = 24 * 60

# the one parser: two-digit hours, or (one_digit_hour) a single digit; 24:00 when allowed
_CLOCK: Final = re.compile(rf"([0-9]|{_HOUR}):({_MINUTE})|(24):(00)")


def parse_hhmm(text: str, *, allow_24: bool = False, one_digit_hour: bool = False) -> int:
    """Minutes after midnight of ``HH:MM`` (``24:00`` is 1440 when ``allow_24``); the whole
    text must be the time (no spaces: strip before if you accept them).
    :class:`InvalidTimeOfDay` (code ``invalid_time_of_day``) otherwise.

    ``one_digit_hour`` is booking policies' documented variant: their ``outside_hours``
    values also take ``9:00`` (their canonical form, and every other place, is ``09:00``).
    """
    match = _CLOCK.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidTimeOfDay(str(text), allow_24=allow_24)
    if match.group(3) is not None:
        if not allow_24:
            raise InvalidTimeOfDay(text, allow_24=allow_24)
        return MINUTES_PER_DAY
    hours, minutes = match.group(1), match.group(2)
    if len(hours) == 1 and not one_digit_hour:
        raise InvalidTimeOfDay(text, allow_24=allow_24)
    return int(hours) * 60 + int(minutes)


def format_hhmm(minutes: int) -> str:
    """``HH:MM`` of minutes after midnight, 0 to 1440 (``24:00``)."""
    if isinstance(minutes, bool) or not 0 <= minutes <= MINUTES_PER_DAY:
        raise ValueError(f"{minutes!r} is not a minute of a day (0 to {MINUTES_PER_DAY}).")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


TimeOfDay = Annotated[str, Field(pattern=TIME_OF_DAY_PATTERN)]
"""A pydantic field type: ``HH:MM``, 00:00 to 23:59."""
TimeOfDayOrEnd = Annotated[str, Field(pattern=TIME_OF_DAY_OR_END_PATTERN)]
"""A pydantic field type: ``HH:MM``, 00:00 to 24:00 (working hours' interval bounds)."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final[tuple[Weekday, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The weekdays as every message and setting names them, Monday first (``date.weekday()``
indexes them). ``contracts.identity`` re-exports both names."""


# --- time zones ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """The IANA zone names the services accept (``zoneinfo``'s, and ``UTC``), sorted."""
    return tuple(sorted(available_timezones() | {"UTC"}))


# --- policy condition values -----------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DAY = f"(?:{'|'.join(WEEKDAYS)})"
_HHMM = HHMM
CONDITION_VALUE_PATTERNS: Final[dict[ConditionType, str]] = {
    ConditionType.CALLER_DOMAIN: rf"^(?:internal|external|{_LABEL}(?:\.{_LABEL})+)$",
    ConditionType.CALLER_EMAIL: EMAIL_PATTERN,
    ConditionType.CALLER_TRUST_LEVEL: f"^(?:{'|'.join(level.value for level in TrustLevel)})$",
    ConditionType.DURATION_OVER: "^(?:[1-9][0-9]{0,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)$",
    ConditionType.WEEKDAY: rf"^{_DAY}(?:,{_DAY})*$",
    ConditionType.OUTSIDE_HOURS: rf"^{_HHMM}-(?:{_HHMM}|24:00)$",
}
"""Per ``condition_type``, the canonical form of its ``condition_value`` (booking also takes
some variants: upper case, spaces, full day names, ``@example.com``)."""
