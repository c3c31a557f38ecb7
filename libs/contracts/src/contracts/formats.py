"""The shapes of values that cross the services' boundaries: ids, slugs, e-mail addresses,
time zones and policy condition values.

Each pattern states what the owning service accepts, so that the gateway's OpenAPI
document (and the validation of its path parameters) says the same as the service that
checks the value: a value that matches is well formed (it may still be unknown, or refused
by a rule about the data, such as a slug that is taken). Patterns are written for both
Python's ``re`` and JSON Schema's ECMA-262 dialect (no lookbehind, no ``\\Z``).
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from typing import Final
from zoneinfo import available_timezones

from contracts.policies import ConditionType, TrustLevel

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

BASE64URL: Final = r"^[A-Za-z0-9_-]+$"
"""base64url without padding: cursors and OAuth states the services issue."""

VISIBLE_TEXT: Final = r"\S"
"""Text that keeps a character once cleaned (``cortex_runtime.text.clean_text``)."""


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """The IANA zone names the services accept (``zoneinfo``'s, and ``UTC``), sorted."""
    return tuple(sorted(available_timezones() | {"UTC"}))


# --- policy condition values -----------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DAY = "(?:mon|tue|wed|thu|fri|sat|sun)"
_HHMM = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
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
