"""CalDAV (Radicale, iCloud, Fastmail, Nextcloud, ...) through the ``caldav`` package.

caldav's async client runs on httpx here; its session is replaced by the SSRF-safe
client, so every request and every redirect hop is vetted and pinned. Changes are learned
with ``sync-collection`` (RFC 6578): only changed objects are fetched.

A booking's event is the resource ``<calendar>/<UID>.ics``: created by a PUT (a retry
overwrites, never duplicates), moved by a PUT of the same resource with the new times and
SEQUENCE one more (``If-Match`` its ETag: a change made meanwhile is read again), deleted
by a DELETE.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import caldav.async_davclient as caldav_http
import httpx
from caldav.async_davclient import AsyncDAVClient
from caldav.collection import Calendar
from caldav.lib import error as caldav_error

from calendars.adapters.providers import CredentialsRejected, ProviderUnavailable, SyncTokenExpired
from calendars.adapters.ssrf import UrlRefused, shared_ssl_context
from calendars.domain.ical import IcalError, event_ics, expand_ics, moved_ics
from calendars.domain.remote import Changes, EventWindow, RemoteCalendar, RemoteEvent

# caldav speaks the first of httpx2, httpxyz, httpx it can import, and httpx2 is installed
# beside httpx (the MCP SDK brings it): its auth objects and exceptions would then be
# httpx2's, which the SSRF-safe httpx session refuses ("Invalid auth argument"). The session
# is httpx, so caldav is told to speak httpx.
caldav_http.httpx = httpx
caldav_http._HTTPX_FLAVOUR = "httpx"


def _translate(exc: BaseException) -> Exception:
    if isinstance(exc, UrlRefused):
        return exc
    if isinstance(exc, caldav_error.AuthorizationError):
        return CredentialsRejected("The CalDAV server rejected the username or password.")
    if isinstance(exc, caldav_error.NotFoundError):
        return ProviderUnavailable("The calendar no longer exists on the CalDAV server.")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnavailable("The CalDAV server did not answer in time.")
    if isinstance(exc, httpx.HTTPError | OSError):
        return ProviderUnavailable("The CalDAV server cannot be reached.")
    if isinstance(exc, caldav_error.DAVError | IcalError | ValueError | KeyError):
        return ProviderUnavailable("The server did not answer like a CalDAV server.")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


MOVE_ATTEMPTS = 3  # reads and conditional writes of a moved event changed meanwhile


def _event_url(calendar: Any, uid: str) -> str:
    """The resource of the event Cortex writes with this UID."""
    return f"{str(calendar.url).rstrip('/')}/{uid}.ics"


class CaldavProvider:
    def __init__(
        self,
        server_url: str,
        username: str,
        password: str,
        session: httpx.AsyncClient,
        timezone: str = "UTC",
    ) -> None:
        # the client's own session is replaced at once: given a ready TLS context, creating
        # it costs no CA-bundle load
        self._client = AsyncDAVClient(
            url=server_url,
            username=username,
            password=password,
            ssl_verify_cert=shared_ssl_context(),  # type: ignore[arg-type]
        )
        self._auth = httpx.BasicAuth(username, password)
        self._client.session = session  # the SSRF-safe client
        self._session = session
        self._tz = ZoneInfo(timezone)
        self._calendars: dict[str, Any] = {}

    async def aclose(self) -> None:
        await self._session.aclose()

    async def _calendar(self, calendar_id: str) -> Any:
        """The calendar at ``calendar_id`` (its URL, found by :meth:`list_calendars` when the
        connection was made). Not discovered again: discovery is three PROPFINDs (principal,
        calendar home, its calendars), and every live check and event write opens a new
        provider; a calendar deleted since answers 404 to what is asked of it."""
        calendar = self._calendars.get(calendar_id)
        if calendar is None:
            # as caldav's own discovery builds them (its hints name only the sync client)
            client: Any = self._client
            calendar = self._calendars[calendar_id] = Calendar(client=client, url=calendar_id)
        return calendar

    async def list_calendars(self) -> list[RemoteCalendar]:
        try:
            principal = await self._client.get_principal()
            found: list[Any] = await principal.get_calendars()  # type: ignore[misc]
            result = []
            for calendar in found:
                url = str(calendar.url)
                self._calendars[url] = calendar
                name = await calendar.get_display_name() or url.rstrip("/").rsplit("/", 1)[-1]
                result.append(RemoteCalendar(id=url, name=str(name)))
            return result
        except Exception as exc:
            raise _translate(exc) from exc

    def _expand(self, obj: Any, start: datetime, end: datetime) -> list[RemoteEvent]:
        href = str(obj.url)
        return [
            dataclasses.replace(e, object_key=href)
            for e in expand_ics(obj.data, start, end, self._tz)
        ]

    async def _expand_all(
        self, objects: list[Any], start: datetime, end: datetime
    ) -> list[RemoteEvent]:
        """Parse and expand in a worker thread: a calendar of thousands of events takes
        seconds of CPU, during which the service must go on answering."""

        def expand() -> list[RemoteEvent]:
            return [event for obj in objects for event in self._expand(obj, start, end)]

        return await asyncio.to_thread(expand)

    async def fetch_window(self, calendar_id: str, start: datetime, end: datetime) -> EventWindow:
        calendar = await self._calendar(calendar_id)
        try:
            # the token first: anything changed after it shows up in the next changes_since
            token = await self._current_token(calendar)
            objects = await calendar.search(start=start, end=end, event=True)
            events = await self._expand_all(objects, start, end)
        except Exception as exc:
            raise _translate(exc) from exc
        return EventWindow(events=events, sync_token=token)

    async def _current_token(self, calendar: Any) -> str | None:
        try:
            collection = await calendar.get_objects_by_sync_token(load_objects=False)
        except caldav_error.ReportError:
            return None  # the server has no sync-collection: every live check refetches
        token = getattr(collection, "sync_token", None)
        return str(token) if token else None

    async def changes_since(
        self, calendar_id: str, sync_token: str, start: datetime, end: datetime
    ) -> Changes:
        calendar = await self._calendar(calendar_id)
        try:
            collection = await calendar.get_objects_by_sync_token(
                sync_token=sync_token, load_objects=True
            )
        except caldav_error.ReportError as exc:
            raise SyncTokenExpired("The CalDAV sync token is no longer valid.") from exc
        except Exception as exc:
            raise _translate(exc) from exc
        changes = Changes(sync_token=str(getattr(collection, "sync_token", "") or "") or None)
        changed = []
        for obj in collection:
            href = str(obj.url)
            if getattr(obj, "data", None):
                changes.changed_uids.add(href)
                changed.append(obj)
            else:
                changes.removed_uids.add(href)
        changes.changed.extend(await self._expand_all(changed, start, end))
        return changes

    async def create_event(
        self,
        calendar_id: str,
        uid: str,
        start: datetime,
        end: datetime,
        summary: str,
        description: str = "",
        attendee_email: str = "",
    ) -> str:
        calendar = await self._calendar(calendar_id)
        ics = event_ics(uid, start, end, summary, description, attendee_email)
        url = _event_url(calendar, uid)
        try:
            # PUT to the UID's own resource name: a retry overwrites, never duplicates
            response = await self._session.put(
                url,
                content=ics.encode(),
                headers={"Content-Type": "text/calendar; charset=utf-8"},
                auth=self._auth,
            )
        except Exception as exc:
            raise _translate(exc) from exc
        if response.status_code in (401, 403):
            raise CredentialsRejected("The CalDAV server rejected the username or password.")
        if response.status_code not in (200, 201, 204):
            raise ProviderUnavailable(
                f"The CalDAV server refused the event ({response.status_code})."
            )
        return uid

    async def move_event(
        self,
        calendar_id: str,
        uid: str,
        start: datetime,
        end: datetime,
        summary: str | None = None,
        description: str | None = None,
    ) -> list[RemoteEvent] | None:
        calendar = await self._calendar(calendar_id)
        url = _event_url(calendar, uid)
        for _ in range(MOVE_ATTEMPTS):
            try:
                current = await self._session.get(url, auth=self._auth)
            except Exception as exc:
                raise _translate(exc) from exc
            if current.status_code in (401, 403):
                raise CredentialsRejected("The CalDAV server rejected the username or password.")
            if current.status_code in (404, 410):
                return None
            if current.status_code != 200:
                raise ProviderUnavailable(
                    f"The CalDAV server did not return the event ({current.status_code})."
                )
            try:
                ics = moved_ics(current.content, uid, start, end, summary, description, self._tz)
            except Exception as exc:
                raise _translate(exc) from exc
            if ics is None:  # already there
                return self._as_synced(calendar, url, current.content, start, end)
            headers = {"Content-Type": "text/calendar; charset=utf-8"}
            if etag := current.headers.get("etag"):
                headers["If-Match"] = etag  # unless changed since it was read
            try:
                response = await self._session.put(
                    url, content=ics.encode(), headers=headers, auth=self._auth
                )
            except Exception as exc:
                raise _translate(exc) from exc
            if response.status_code == 412:
                continue  # changed meanwhile: read it again
            if response.status_code in (401, 403):
                raise CredentialsRejected("The CalDAV server rejected the username or password.")
            if response.status_code not in (200, 201, 204):
                raise ProviderUnavailable(
                    f"The CalDAV server refused the move ({response.status_code})."
                )
            return self._as_synced(calendar, url, ics, start, end)
        raise ProviderUnavailable("The event kept changing on the CalDAV server; try again.")

    def _as_synced(
        self, calendar: Any, url: str, ics: str | bytes, start: datetime, end: datetime
    ) -> list[RemoteEvent]:
        """The moved event as a sync would store it (keyed by its resource's URL)."""
        key = str(calendar.url.join(url))
        try:
            found = expand_ics(ics, start, end, self._tz)
        except Exception as exc:
            raise _translate(exc) from exc
        return [dataclasses.replace(e, object_key=key) for e in found]

    async def delete_event(self, calendar_id: str, uid: str) -> None:
        calendar = await self._calendar(calendar_id)
        url = _event_url(calendar, uid)
        try:
            response = await self._session.delete(url, auth=self._auth)
        except Exception as exc:
            raise _translate(exc) from exc
        if response.status_code in (401, 403):
            raise CredentialsRejected("The CalDAV server rejected the username or password.")
        if response.status_code not in (200, 204, 404, 410):
            raise ProviderUnavailable(
                f"The CalDAV server refused the delete ({response.status_code})."
            )
