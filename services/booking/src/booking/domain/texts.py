"""What the free text of a booking and of a caller becomes once cleaned: the one place its
limits live (``contracts.text.clean_text``: control and invisible characters dropped,
white space folded, cut to the limit)."""

from __future__ import annotations

from typing import Final

from contracts.formats import EMAIL_MAX
from contracts.text import clean_text

TITLE_MAX: Final = 200
DESCRIPTION_MAX: Final = 5000
NAME_MAX: Final = 200
REASON_MAX: Final = 500


def title(text: str) -> str:
    """The title (empty when nothing visible is left: a booking then needs another)."""
    return clean_text(text, TITLE_MAX)


def description(text: str) -> str:
    return clean_text(text, DESCRIPTION_MAX)


def name(text: str) -> str:
    """An attendee's or a caller's display name."""
    return clean_text(text, NAME_MAX)


def address(text: str) -> str:
    """An e-mail address kept as given (a refused request's record), only cleaned."""
    return clean_text(text, EMAIL_MAX)


def reason(text: str, default: str) -> str:
    """Why a booking was declined, cancelled or failed; ``default`` when none is given."""
    return clean_text(text, REASON_MAX) or default
