"""Google Calendar (API v3) as a :class:`CalendarProvider`.

Wire format: https://developers.google.com/calendar/api/v3/reference

* Windows are ``events.list`` with ``singleEvents=true`` (recurrences expanded by Google)
  and ``showDeleted=true``; the last page's ``nextSyncToken`` is the sync token.
* Incremental sync is ``events.list?syncToken=...`` (Google forbids timeMin/timeMax with
  a sync token, so the changes are filtered to the window here). Google reports the
  changed *occurrences*, but :class:`Changes` replaces every stored event of a changed UID,
  so for a changed recurring series the occurrences in the window are read again with
  ``events.instances``. A change whose UID cannot be learnt (Google only guarantees the
  ``id`` of a deleted event) is looked up with ``events.get``; failing that the sync token
  is reported as expired, which makes the caller do a full, always-correct, sync.
* Idempotent creation: ``events.insert`` with a deterministic event ``id``, the lowercase
  base32hex of the UID (Google accepts ``[a-v0-9]{5,1024}``; a UID too short or too long
  for that uses the SHA-256 hex digest instead). Inserting the same UID again answers 409
  "already exists", which is success; deleting computes the same id (404/410: success).
  Google then sets ``iCalUID`` to ``<id>@google.com`` (the API takes either an id or an
  iCalUID, not both), so the UID is also kept in the private extended property
  ``cortexUid`` and read back from there.
* Moving (``events.patch`` of the same id: ``start``/``end``, and ``summary`` or
  ``description`` when given; Google bumps the event's ``sequence``). A 404/410, or an
  event already cancelled, is "no such event".
* Invitations: with an attendee, creation and deletion use ``sendUpdates=all`` (Google
  emails the attendee, as Microsoft does for Graph meetings); without, ``none``. A move
  uses ``all``: only an event's attendees are told.
* All-day events (``date``) span their dates in the calendar's time zone (the
  ``timeZone`` of the events list, else of the calendar list, else UTC). Times are
  returned in UTC; ``recurrence_id`` is the original start in UTC, ISO 8601.

The adapter does not own the ``httpx.AsyncClient``: :meth:`GoogleCalendar.aclose` leaves
it open for its owner to close.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from calendars.adapters.oauth import BearerSession
from calendars.adapters.providers import CalendarProvider, ProviderUnavailable, SyncTokenExpired
from calendars.domain.remote import Changes, EventWindow, RemoteCalendar, RemoteEvent

GOOGLE_CALENDAR_URL = "https://www.googleapis.com/calendar/v3"
UID_PROPERTY = "cortexUid"  # private extended property holding the iCalendar UID
PAGE_SIZE = "2500"
MAX_PAGES = 1000  # a provider that keeps returning page tokens is broken
_RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
_STATUSES = {"confirmed", "tentative", "cancelled"}


def event_id_for_uid(uid: str) -> str:
    """The Google event id that :meth:`GoogleCalendar.create_event` gives this UID."""
    encoded = base64.b32hexencode(uid.encode("utf-8")).decode("ascii").rstrip("=").lower()
    if 5 <= len(encoded) <= 1024:
        return encoded
    return hashlib.sha256(uid.encode("utf-8")).hexdigest()


def uid_from_event_id(event_id: str) -> str | None:
    """The UID behind an id made by :func:`event_id_for_uid`, if it looks like one."""
    text = event_id.upper()
    try:
        raw = base64.b32hexdecode(text + "=" * (-len(text) % 8))
        uid = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not uid or not uid.isprintable() or event_id_for_uid(uid) != event_id:
        return None
    return uid


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _zone(name: object) -> tzinfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return None


def _str(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value if isinstance(value, str) else ""


def _uid_of(item: dict[str, Any]) -> str | None:
    """Our UID (private property), else the iCalUID, else decoded from our own id scheme."""
    props = item.get("extendedProperties")
    if isinstance(props, dict):
        private = props.get("private")
        if isinstance(private, dict):
            value = private.get(UID_PROPERTY)
            if isinstance(value, str) and value:
                return value
    if uid := _str(item, "iCalUID"):
        return uid
    return uid_from_event_id(_str(item, "id"))


def _when(value: object, zone: tzinfo) -> tuple[datetime, bool] | None:
    """``(moment, all_day)`` of a Google ``start``/``end``/``originalStartTime``."""
    if not isinstance(value, dict):
        return None
    try:
        if isinstance(value.get("dateTime"), str):
            moment = datetime.fromisoformat(value["dateTime"])
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=_zone(value.get("timeZone")) or zone)
            return moment.astimezone(UTC), False
        if isinstance(value.get("date"), str):
            midnight = datetime.combine(date.fromisoformat(value["date"]), time(), zone)
            return midnight.astimezone(UTC), True
    except ValueError:
        return None
    return None


def _recurrence_id(item: dict[str, Any], zone: tzinfo) -> str:
    """The occurrence's original start, in UTC, ISO 8601 (as the CalDAV adapter writes it:
    a date is its midnight in the calendar's zone)."""
    if not _str(item, "recurringEventId"):
        return ""
    original = _when(item.get("originalStartTime"), zone)
    return original[0].astimezone(UTC).isoformat() if original is not None else ""


def _event(item: dict[str, Any], zone: tzinfo) -> RemoteEvent | None:
    uid = _uid_of(item)
    start = _when(item.get("start"), zone)
    end = _when(item.get("end"), zone)
    if uid is None or start is None or end is None:
        return None  # a deleted event reduced to its id: nothing to show
    status = _str(item, "status")
    return RemoteEvent(
        uid=uid,
        start=start[0],
        end=max(end[0], start[0]),
        summary=_str(item, "summary"),
        status=status if status in _STATUSES else "confirmed",
        transparent=_str(item, "transparency") == "transparent",
        all_day=start[1],
        recurrence_id=_recurrence_id(item, zone),
    )


def _overlaps(event: RemoteEvent, start: datetime, end: datetime) -> bool:
    if event.start == event.end:
        return start <= event.start < end
    return event.start < end and event.end > start


class GoogleCalendar(CalendarProvider):
    """One Google account's calendars. ``access_token_provider`` returns a valid access
    token (e.g. :class:`calendars.adapters.oauth.AccessTokens`)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str = GOOGLE_CALENDAR_URL,
        *,
        access_token_provider: Callable[[], Awaitable[str]],
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = BearerSession(client, access_token_provider, "Google Calendar")
        self._zones: dict[str, tzinfo] = {}  # calendar id -> time zone, from calendarList

    def _events_url(self, calendar_id: str, *path: str) -> str:
        tail = "".join(f"/{quote(part, safe='')}" for part in path)
        return f"{self._base}/calendars/{quote(calendar_id, safe='')}/events{tail}"

    def _zone_of(self, calendar_id: str, body: dict[str, Any]) -> tzinfo:
        return _zone(body.get("timeZone")) or self._zones.get(calendar_id) or UTC

    def _error(self, response: httpx.Response, action: str) -> Exception:
        if response.status_code == 403:
            try:
                errors = response.json()["error"]["errors"]
                reasons = {e.get("reason") for e in errors if isinstance(e, dict)}
            except (ValueError, KeyError, TypeError):
                reasons = set()
            if reasons & _RATE_LIMIT_REASONS:
                return ProviderUnavailable(
                    "Google Calendar is limiting requests right now; try again later."
                )
        return self._http.refused(response, action)

    async def _list(
        self, url: str, params: dict[str, str], action: str, *, sync: bool = False
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every item of a paged list, and the last page (with its nextSyncToken)."""
        items: list[dict[str, Any]] = []
        page_token = ""
        for _ in range(MAX_PAGES):
            query = {**params, "pageToken": page_token} if page_token else params
            response = await self._http.request("GET", url, params=query)
            if sync and response.status_code == 410:
                raise SyncTokenExpired(
                    "Google Calendar needs a full resynchronisation of this calendar."
                )
            if response.status_code != 200:
                raise self._error(response, action)
            body = self._http.json(response)
            page = body.get("items", [])
            if not isinstance(page, list):
                raise ProviderUnavailable("Google Calendar did not answer like a calendar server.")
            items.extend(item for item in page if isinstance(item, dict))
            page_token = _str(body, "nextPageToken")
            if not page_token:
                return items, body
        raise ProviderUnavailable("Google Calendar kept paging without end; try again later.")

    async def list_calendars(self) -> list[RemoteCalendar]:
        items, _ = await self._list(
            f"{self._base}/users/me/calendarList", {"maxResults": "250"}, "list the calendars"
        )
        calendars = []
        for item in items:
            calendar_id = _str(item, "id")
            if not calendar_id:
                continue
            if zone := _zone(item.get("timeZone")):
                self._zones[calendar_id] = zone
            calendars.append(
                RemoteCalendar(
                    id=calendar_id,
                    name=_str(item, "summaryOverride") or _str(item, "summary") or calendar_id,
                    primary=item.get("primary") is True,
                    writable=_str(item, "accessRole") in {"owner", "writer"},
                )
            )
        return calendars

    async def fetch_window(self, calendar_id: str, start: datetime, end: datetime) -> EventWindow:
        items, last = await self._list(
            self._events_url(calendar_id),
            {
                "timeMin": _rfc3339(start),
                "timeMax": _rfc3339(end),
                "singleEvents": "true",
                "showDeleted": "true",
                "maxResults": PAGE_SIZE,
            },
            "read the calendar",
        )
        zone = self._zone_of(calendar_id, last)
        events = [
            event
            for item in items
            if (event := _event(item, zone)) is not None and _overlaps(event, start, end)
        ]
        return EventWindow(events=events, sync_token=_str(last, "nextSyncToken") or None)

    async def _instances(
        self, calendar_id: str, master_id: str, start: datetime, end: datetime
    ) -> tuple[list[dict[str, Any]], tzinfo] | None:
        """The occurrences of a recurring event in the window; None when it is gone."""
        url = self._events_url(calendar_id, master_id, "instances")
        params = {
            "timeMin": _rfc3339(start),
            "timeMax": _rfc3339(end),
            "showDeleted": "true",
            "maxResults": PAGE_SIZE,
        }
        response = await self._http.request("GET", url, params=params)
        if response.status_code in {404, 410}:
            return None
        if response.status_code != 200:
            raise self._error(response, "read a recurring event")
        first = self._http.json(response)
        items: list[dict[str, Any]] = [i for i in first.get("items", []) if isinstance(i, dict)]
        if token := _str(first, "nextPageToken"):
            more, _ = await self._list(
                url, {**params, "pageToken": token}, "read a recurring event"
            )
            items.extend(more)
        return items, self._zone_of(calendar_id, first)

    async def _lookup_uid(self, calendar_id: str, event_id: str) -> str | None:
        """The UID of an event (deleted ones included), by ``events.get``."""
        if not event_id:
            return None
        response = await self._http.request("GET", self._events_url(calendar_id, event_id))
        if response.status_code in {404, 410}:
            return None
        if response.status_code != 200:
            raise self._error(response, "read an event")
        return _uid_of(self._http.json(response))

    async def changes_since(
        self, calendar_id: str, sync_token: str, start: datetime, end: datetime
    ) -> Changes:
        items, last = await self._list(
            self._events_url(calendar_id),
            {
                "syncToken": sync_token,
                "singleEvents": "true",
                "showDeleted": "true",
                "maxResults": PAGE_SIZE,
            },
            "read the calendar's changes",
            sync=True,
        )
        zone = self._zone_of(calendar_id, last)
        expired = SyncTokenExpired(
            "Google Calendar needs a full resynchronisation of this calendar."
        )
        changes = Changes(sync_token=_str(last, "nextSyncToken") or None)
        series: dict[str, str | None] = {}  # recurringEventId -> UID when known
        for item in items:
            master_id = _str(item, "recurringEventId")
            if master_id:
                series[master_id] = series.get(master_id) or _uid_of(item)
                continue
            uid = _uid_of(item) or await self._lookup_uid(calendar_id, _str(item, "id"))
            if uid is None:
                raise expired
            if _str(item, "status") == "cancelled":
                changes.removed_uids.add(uid)
                changes.changed_uids.discard(uid)
                changes.changed = [e for e in changes.changed if e.uid != uid]
                continue
            changes.removed_uids.discard(uid)
            changes.changed_uids.add(uid)
            event = _event(item, zone)
            if event is not None and _overlaps(event, start, end):
                changes.changed.append(event)
        for master_id, known_uid in series.items():
            found = await self._instances(calendar_id, master_id, start, end)
            instances, instance_zone = found if found is not None else ([], zone)
            uid = (
                known_uid
                or next((u for i in instances if (u := _uid_of(i)) is not None), None)
                or await self._lookup_uid(calendar_id, master_id)
            )
            if uid is None:
                raise expired
            if found is None:
                changes.removed_uids.add(uid)
                continue
            changes.removed_uids.discard(uid)
            changes.changed_uids.add(uid)
            changes.changed = [e for e in changes.changed if e.uid != uid]
            for instance in instances:
                event = _event(instance, instance_zone)
                if event is not None and _overlaps(event, start, end):
                    changes.changed.append(event)
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
        body: dict[str, Any] = {
            "id": event_id_for_uid(uid),
            "summary": summary,
            "description": description,
            "start": {"dateTime": _rfc3339(start), "timeZone": "UTC"},
            "end": {"dateTime": _rfc3339(end), "timeZone": "UTC"},
            "extendedProperties": {"private": {UID_PROPERTY: uid}},
        }
        if attendee_email:
            body["attendees"] = [{"email": attendee_email}]
        response = await self._http.request(
            "POST",
            self._events_url(calendar_id),
            params={"sendUpdates": "all" if attendee_email else "none"},
            json=body,
        )
        if response.status_code in {200, 201}:
            self._http.check_success_body(response)
            return uid
        if response.status_code == 409:  # this UID's event already exists
            return uid
        raise self._error(response, "create the event")

    async def move_event(
        self,
        calendar_id: str,
        uid: str,
        start: datetime,
        end: datetime,
        summary: str | None = None,
        description: str | None = None,
    ) -> list[RemoteEvent] | None:
        body: dict[str, Any] = {
            "start": {"dateTime": _rfc3339(start), "timeZone": "UTC"},
            "end": {"dateTime": _rfc3339(end), "timeZone": "UTC"},
        }
        if summary is not None:
            body["summary"] = summary
        if description is not None:
            body["description"] = description
        response = await self._http.request(
            "PATCH",
            self._events_url(calendar_id, event_id_for_uid(uid)),
            params={"sendUpdates": "all"},
            json=body,
        )
        if response.status_code in {404, 410}:
            return None
        if response.status_code != 200:
            raise self._error(response, "move the event")
        item = self._http.json(response)
        if _str(item, "status") == "cancelled":  # deleted: nothing to move
            return None
        event = _event(item, self._zone_of(calendar_id, {}))
        return [] if event is None else [event]

    async def delete_event(self, calendar_id: str, uid: str) -> None:
        response = await self._http.request(
            "DELETE",
            self._events_url(calendar_id, event_id_for_uid(uid)),
            params={"sendUpdates": "all"},
        )
        if response.status_code in {200, 204}:
            self._http.check_success_body(response)
            return
        if response.status_code in {404, 410}:  # already gone
            return
        raise self._error(response, "delete the event")

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the caller."""
