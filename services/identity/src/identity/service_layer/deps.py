"""What identity's handlers are given: one typed bundle, built once by the bootstrap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cortex_runtime.database import UnitOfWork


@dataclass(frozen=True)
class IdentityDeps:
    uow: Callable[[], UnitOfWork]
    """A new unit of work (one transaction; events go out through its outbox)."""
    reader: Callable[[], UnitOfWork]
    """A read-only unit of work in autocommit: one SELECT without BEGIN/ROLLBACK."""
    clerk_webhook_secret: str
    """The signing secret of Clerk's webhook endpoint (``whsec_...``)."""
