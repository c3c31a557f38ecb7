"""What path and query parameters may contain.

Every value a URL carries here is an identifier, a slug, an e-mail address, a cursor, a
zone name or an OAuth code or state: none holds a control character. PostgreSQL refuses a
NUL in text outright (the query fails), so such values are refused at the edge with the
usual 400, before any service looks them up.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Printable = AfterValidator(_printable)
"""``Annotated[str, Path(...), Printable]``: a 400 when the value holds a control character."""

PathText = Annotated[str, Path(), Printable]
"""A path segment without further constraints (the service checks its shape)."""
