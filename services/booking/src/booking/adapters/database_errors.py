"""What the database says when a write is refused or it cannot be reached, in the terms
the service layer handles (it imports no SQLAlchemy)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from sqlalchemy.exc import DBAPIError, IntegrityError

from cortex_runtime.database import constraint_name

DatabaseError: Final = DBAPIError
"""Any failure of a statement or of the connection (an outage included)."""


class ConstraintViolated(Exception):
    """A write the database refused: ``constraint`` names the constraint or index."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


@contextmanager
def refusals() -> Iterator[None]:
    """Raise an integrity error inside as :class:`ConstraintViolated`."""
    try:
        yield
    except IntegrityError as exc:
        raise ConstraintViolated(constraint_name(exc)) from exc
