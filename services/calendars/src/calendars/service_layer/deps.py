"""What calendars' handlers are given: :class:`CalendarsDeps`, built once by the bootstrap,
and the interface to calendar providers they need (:class:`Providers`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from calendars.adapters.connection_repo import Connection
from calendars.adapters.providers import CalendarProvider
from calendars.adapters.secrets import SecretBox
from calendars.domain.remote import OAuthGrant
from contracts import calendars as msg
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError

UowFactory = Callable[[], UnitOfWork]


class Providers(Protocol):
    """How handlers reach calendar providers (:mod:`calendars.adapters.factory`)."""

    async def open_connection(self, row: Connection, time_zone: str, /) -> CalendarProvider:
        """The provider of a stored connection (refreshing OAuth tokens), reading floating
        and all-day times in ``time_zone``, the owner's."""
        ...

    def caldav(self, server_url: str, username: str, password: str, /) -> CalendarProvider:
        """A CalDAV client for credentials not stored yet."""
        ...

    def oauth_url(self, provider: str, state: str, challenge: str, redirect_uri: str, /) -> str:
        """Where the owner grants access (PKCE ``challenge``)."""
        ...

    async def oauth_exchange(
        self, provider: str, code: str, verifier: str, redirect_uri: str, /
    ) -> OAuthGrant:
        """The grant of an authorization code."""
        ...


@dataclass(frozen=True)
class CalendarsDeps:
    uow: UowFactory
    # reads outside any transaction (autocommit)
    read: UowFactory
    box: SecretBox
    providers: Providers
    horizon_days: int
    sync_interval: timedelta

    def horizon(self) -> tuple[datetime, datetime]:
        """The span of time kept in sync: from a day ago to ``horizon_days`` ahead."""
        now = datetime.now(UTC)
        return now - timedelta(days=1), now + timedelta(days=self.horizon_days)


def parse_provider(value: str) -> msg.Provider:
    try:
        return msg.Provider(value)
    except ValueError as exc:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_provider", "The provider must be google, outlook or caldav."
        ) from exc
