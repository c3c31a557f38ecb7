"""Microsoft Graph (Outlook / Microsoft 365 calendars) as a :class:`CalendarProvider`.

Wire format: https://learn.microsoft.com/graph/api/resources/event

* A window is one full round of ``calendarView/delta`` for ``[start, end)`` (Graph
  expands recurrences into occurrences and exceptions); the round's final
  ``@odata.deltaLink`` is the sync token, and :meth:`GraphCalendar.changes_since` follows
  it. A 410, or an error code like ``syncStateNotFound``, is :class:`SyncTokenExpired`.
  Links are only followed below ``base_url``, so a stored token cannot send the access
  token elsewhere.
* Event identity: Graph gives every occurrence its own ``iCalUId`` and reports a deletion
  as ``{"id": ..., "@removed": {...}}`` with nothing but the Graph id, so the
  :attr:`RemoteEvent.uid` of a Graph event is its Graph ``id`` (stable per occurrence):
  removals then name exactly what was stored, without keeping any mapping.
* Times are asked in UTC (``Prefer: outlook.timezone="UTC"``) and returned in UTC. All-day
  events are local midnights, placed in ``time_zone`` (the owner's IANA zone; UTC by
  default), and keep their wall-clock times so a change of the owner's zone places them
  again. ``recurrence_id`` is an occurrence's ``originalStart`` in UTC, ISO 8601.
* ``showAs: free`` is transparent; ``showAs: tentative`` is status ``tentative``;
  ``isCancelled`` is status ``cancelled``.
* Idempotent creation: Graph cannot filter events on ``transactionId``, and assigns its
  own ``iCalUId``. The UID is therefore written into a single-value extended property
  (``String {66f5a359-4659-4830-9070-00047ec6ac6e} Name CortexUid``) and found again with
  ``$filter=singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '<uid>')``:
  :meth:`create_event` does nothing when an event with the UID exists, and posts with
  ``transactionId=<uid>`` so that Graph deduplicates a retried POST racing that check;
  :meth:`delete_event` deletes every event carrying the UID (none: success);
  :meth:`move_event` PATCHes ``start``/``end`` (and ``subject``/``body`` when given) of
  every event carrying it, in place (none: no such event; Graph tells the attendees).

The adapter does not own the ``httpx.AsyncClient``: :meth:`GraphCalendar.aclose` leaves it
open for its owner to close.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, tzinfo
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from calendars.adapters.oauth import BearerSession
from calendars.adapters.providers import CalendarProvider, ProviderUnavailable, SyncTokenExpired
from calendars.domain.ical import wall_clock_to_utc
from calendars.domain.remote import Changes, EventWindow, RemoteCalendar, RemoteEvent

GRAPH_URL = "https://graph.microsoft.com/v1.0"
UID_PROPERTY_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name CortexUid"
PREFER_UTC = 'outlook.timezone="UTC"'
MAX_PAGES = 1000
_SYNC_EXPIRED_CODES = {"syncstatenotfound", "syncstateinvalid", "resyncrequired"}
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _graph_time(moment: datetime) -> dict[str, str]:
    """A Graph dateTimeTimeZone in UTC."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return {"dateTime": moment.astimezone(UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"}


def _str(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value if isinstance(value, str) else ""


def _odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _when(value: object, all_day: bool, local: tzinfo) -> datetime | None:
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", value["dateTime"]))
    except ValueError:
        return None
    if all_day:
        return wall_clock_to_utc(_midnight(moment), local)
    if moment.tzinfo is None:
        zone_name = value.get("timeZone")
        zone: tzinfo = UTC
        if isinstance(zone_name, str) and zone_name not in {"", "UTC"}:
            try:
                zone = ZoneInfo(zone_name)
            except (KeyError, ValueError):
                zone = UTC  # a Windows zone name: the Prefer header asked for UTC anyway
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time())


def _all_day_wall_clock(value: object) -> datetime | None:
    """An all-day event's start or end as a naive local midnight (its date)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    try:
        return _midnight(datetime.fromisoformat(_FRACTION.sub(r"\1", value["dateTime"])))
    except ValueError:
        return None


def _recurrence_id(item: dict[str, Any]) -> str:
    original = _str(item, "originalStart")
    if not original or _str(item, "type") not in {"occurrence", "exception"}:
        return ""
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", original))
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _event(item: dict[str, Any], local: tzinfo) -> RemoteEvent | None:
    event_id = _str(item, "id")
    all_day = item.get("isAllDay") is True
    start = _when(item.get("start"), all_day, local)
    end = _when(item.get("end"), all_day, local)
    if not event_id or start is None or end is None or _str(item, "type") == "seriesMaster":
        return None
    show_as = _str(item, "showAs")
    if item.get("isCancelled") is True:
        status = "cancelled"
    elif show_as == "tentative":
        status = "tentative"
    else:
        status = "confirmed"
    return RemoteEvent(
        uid=event_id,
        start=start,
        end=max(start, end),
        summary=_str(item, "subject"),
        status=status,
        transparent=show_as == "free",
        all_day=all_day,
        recurrence_id=_recurrence_id(item),
        # an all-day event is its dates in the owner's zone: placed again when it changes
        local_start=_all_day_wall_clock(item.get("start")) if all_day else None,
        local_end=_all_day_wall_clock(item.get("end")) if all_day else None,
    )


def _overlaps(event: RemoteEvent, start: datetime, end: datetime) -> bool:
    if event.start == event.end:
        return start <= event.start < end
    return event.start < end and event.end > start


class GraphCalendar(CalendarProvider):
    """One Microsoft account's calendars. ``access_token_provider`` returns a valid access
    token (e.g. :class:`calendars.adapters.oauth.AccessTokens`)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str = GRAPH_URL,
        *,
        access_token_provider: Callable[[], Awaitable[str]],
        time_zone: str = "UTC",
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = BearerSession(client, access_token_provider, "Microsoft Outlook")
        self._local: tzinfo = ZoneInfo(time_zone) if time_zone != "UTC" else UTC

    def _calendar_url(self, calendar_id: str, tail: str) -> str:
        return f"{self._base}/me/calendars/{quote(calendar_id, safe='')}{tail}"

    def _check_link(self, link: str) -> str:
        if not link.startswith(f"{self._base}/"):
            raise ProviderUnavailable("Microsoft Outlook answered with an unexpected link.")
        return link

    @staticmethod
    def _sync_expired(response: httpx.Response) -> bool:
        if response.status_code == 410:
            return True
        if response.status_code not in {400, 404}:
            return False
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return False
        return isinstance(code, str) and code.lower() in _SYNC_EXPIRED_CODES

    async def _pages(
        self,
        url: str,
        params: dict[str, str] | None,
        action: str,
        *,
        sync: bool = False,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every ``value`` item following ``@odata.nextLink``; and the ``@odata.deltaLink``."""
        headers = {"Prefer": PREFER_UTC}
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        for _ in range(MAX_PAGES):
            if next_url is None:
                break
            response = await self._http.request("GET", next_url, params=params, headers=headers)
            if sync and self._sync_expired(response):
                raise SyncTokenExpired(
                    "Microsoft Outlook needs a full resynchronisation of this calendar."
                )
            if response.status_code != 200:
                raise self._http.refused(response, action)
            body = self._http.json(response)
            value = body.get("value", [])
            if not isinstance(value, list):
                raise ProviderUnavailable(
                    "Microsoft Outlook did not answer like a calendar server."
                )
            items.extend(item for item in value if isinstance(item, dict))
            params = None  # links carry their own query
            next_link = _str(body, "@odata.nextLink")
            if not next_link:
                return items, _str(body, "@odata.deltaLink")
            next_url = self._check_link(next_link)
        raise ProviderUnavailable("Microsoft Outlook kept paging without end; try again later.")

    async def list_calendars(self) -> list[RemoteCalendar]:
        items, _ = await self._pages(f"{self._base}/me/calendars", None, "list the calendars")
        return [
            RemoteCalendar(
                id=_str(item, "id"),
                name=_str(item, "name") or _str(item, "id"),
                primary=item.get("isDefaultCalendar") is True,
                writable=item.get("canEdit") is not False,
            )
            for item in items
            if _str(item, "id")
        ]

    async def fetch_window(self, calendar_id: str, start: datetime, end: datetime) -> EventWindow:
        items, delta_link = await self._pages(
            self._calendar_url(calendar_id, "/calendarView/delta"),
            {"startDateTime": _iso_utc(start), "endDateTime": _iso_utc(end)},
            "read the calendar",
        )
        events = [
            event
            for item in items
            if "@removed" not in item
            and (event := _event(item, self._local)) is not None
            and _overlaps(event, start, end)
        ]
        return EventWindow(events=events, sync_token=delta_link or None)

    async def changes_since(
        self, calendar_id: str, sync_token: str, start: datetime, end: datetime
    ) -> Changes:
        if not sync_token.startswith(f"{self._base}/"):
            raise SyncTokenExpired(
                "Microsoft Outlook needs a full resynchronisation of this calendar."
            )
        items, delta_link = await self._pages(
            sync_token, None, "read the calendar's changes", sync=True
        )
        latest: dict[str, dict[str, Any]] = {}  # a later page wins over an earlier one
        for item in items:
            if event_id := _str(item, "id"):
                latest[event_id] = item
        changes = Changes(sync_token=delta_link or None)
        for event_id, item in latest.items():
            if "@removed" in item:
                changes.removed_uids.add(event_id)
                continue
            changes.changed_uids.add(event_id)
            event = _event(item, self._local)
            if event is not None and _overlaps(event, start, end):
                changes.changed.append(event)
        return changes

    async def _ids_with_uid(self, calendar_id: str, uid: str) -> list[str]:
        url = self._calendar_url(calendar_id, "/events")
        condition = (
            f"singleValueExtendedProperties/Any(ep: ep/id eq {_odata_quote(UID_PROPERTY_ID)}"
            f" and ep/value eq {_odata_quote(uid)})"
        )
        items, _ = await self._pages(
            url, {"$filter": condition, "$select": "id"}, "look for the event"
        )
        return [event_id for item in items if (event_id := _str(item, "id"))]

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
        if found := await self._ids_with_uid(calendar_id, uid):
            return found[0]
        body: dict[str, Any] = {
            "subject": summary,
            "body": {"contentType": "text", "content": description},
            "start": _graph_time(start),
            "end": _graph_time(end),
            "transactionId": uid,
            "singleValueExtendedProperties": [{"id": UID_PROPERTY_ID, "value": uid}],
        }
        if attendee_email:
            body["attendees"] = [{"emailAddress": {"address": attendee_email}, "type": "required"}]
        response = await self._http.request(
            "POST", self._calendar_url(calendar_id, "/events"), json=body
        )
        if response.status_code in {200, 201}:
            self._http.check_success_body(response)
            created = _str(self._http.json(response), "id") if response.content.strip() else ""
            return created or await self._synced_uid(calendar_id, uid)
        if response.status_code == 409:
            return await self._synced_uid(calendar_id, uid)
        raise self._http.refused(response, "create the event")

    async def _synced_uid(self, calendar_id: str, uid: str) -> str:
        """The id of the event carrying the UID (the UID when none is found)."""
        found = await self._ids_with_uid(calendar_id, uid)
        return found[0] if found else uid

    async def move_event(
        self,
        calendar_id: str,
        uid: str,
        start: datetime,
        end: datetime,
        summary: str | None = None,
        description: str | None = None,
    ) -> list[RemoteEvent] | None:
        body: dict[str, Any] = {"start": _graph_time(start), "end": _graph_time(end)}
        if summary is not None:
            body["subject"] = summary
        if description is not None:
            body["body"] = {"contentType": "text", "content": description}
        moved: list[RemoteEvent] = []
        found = False
        for event_id in await self._ids_with_uid(calendar_id, uid):
            response = await self._http.request(
                "PATCH",
                self._calendar_url(calendar_id, f"/events/{quote(event_id, safe='')}"),
                json=body,
                headers={"Prefer": PREFER_UTC},
            )
            if response.status_code in {404, 410}:  # deleted meanwhile
                continue
            if response.status_code != 200:
                raise self._http.refused(response, "move the event")
            found = True
            if (event := _event(self._http.json(response), self._local)) is not None:
                moved.append(event)
        return moved if found else None

    async def delete_event(self, calendar_id: str, uid: str) -> None:
        for event_id in await self._ids_with_uid(calendar_id, uid):
            response = await self._http.request(
                "DELETE", self._calendar_url(calendar_id, f"/events/{quote(event_id, safe='')}")
            )
            if response.status_code in {200, 204}:
                self._http.check_success_body(response)
            elif response.status_code not in {404, 410}:
                raise self._http.refused(response, "delete the event")

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the caller."""
