"""A stateful fake of Google OAuth and the Google Calendar API v3, for tests and e2e.

Serves (below :data:`API_PREFIX`, so ``base_url`` is ``<server>/calendar/v3``):

* ``GET /users/me/calendarList`` (``maxResults``/``pageToken``)
* ``GET /calendars/{id}/events``: ``timeMin``/``timeMax``, ``singleEvents``,
  ``showDeleted``, ``maxResults``/``pageToken``; or ``syncToken`` (only the events changed
  since, deleted ones included; 410 once :meth:`FakeGoogle.invalidate_sync_tokens` ran).
  The last page carries ``nextSyncToken``.
* ``GET /calendars/{id}/events/{eventId}`` and ``.../{eventId}/instances``
* ``POST /calendars/{id}/events`` (``events.insert``: an ``id`` already used is 409)
* ``PATCH /calendars/{id}/events/{eventId}`` (``events.patch``: patch semantics, objects
  merged field by field, arrays replaced, ``null`` clears a field; ``id``/``iCalUID`` kept;
  a change of ``start``/``end`` bumps ``sequence``; 404 unknown; a cancelled event is
  patched and stays cancelled unless the patch sets ``status``)
* ``DELETE /calendars/{id}/events/{eventId}`` (204; 410 when already deleted; 404 unknown)

plus ``/authorize`` and ``/token`` (:class:`cortex_dev.fakes.server.FakeOAuth`, with an
unsigned ``id_token`` carrying the email). Every API call needs a live Bearer token (401).

Recurring events are stored already expanded: a hidden master plus its occurrences
(ids ``<master>_<YYYYMMDDTHHMMSSZ>``, with ``recurringEventId`` and ``originalStartTime``).
Deleting sets ``status: cancelled``, as Google does; with ``minimal_cancelled`` the lists
reduce cancelled events to what Google guarantees (``id``, ``status`` and, for
occurrences, ``recurringEventId``/``originalStartTime``).
"""

from __future__ import annotations

import copy
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cortex_dev.fakes.server import FakeOAuth

API_PREFIX = "/calendar/v3"
_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")


def _error(status: int, message: str, reason: str) -> JSONResponse:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }
    return JSONResponse(body, status_code=status)


def wire_time(moment: datetime | date) -> dict[str, str]:
    """A Google ``start``/``end``: ``dateTime`` for a datetime, ``date`` for a date."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        return {"dateTime": moment.isoformat().replace("+00:00", "Z")}
    return {"date": moment.isoformat()}


def _instant(value: dict[str, Any], zone: tzinfo) -> datetime:
    if "dateTime" in value:
        moment = datetime.fromisoformat(value["dateTime"])
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    return datetime.combine(date.fromisoformat(value["date"]), time(), zone)


def _merged(data: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merged field by field, anything else replaced, null clears."""
    out = copy.deepcopy(data)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _parse_bool(value: str | None, default: bool) -> bool:
    return default if value is None else value.lower() == "true"


@dataclass
class _Calendar:
    id: str
    owner: str
    summary: str
    primary: bool
    access_role: str
    time_zone: str

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.time_zone) if self.time_zone != "UTC" else UTC


@dataclass
class _Stored:
    data: dict[str, Any]
    seq: int
    master: bool = False


@dataclass
class _State:
    calendars: dict[str, _Calendar] = field(default_factory=dict)
    events: dict[str, dict[str, _Stored]] = field(default_factory=dict)
    seq: int = 0
    sync_floor: int = 0  # sync tokens below this are expired


class FakeGoogle:
    """The fake and its controls; serve :attr:`app` (e.g. with ``run_in_thread``)."""

    def __init__(
        self,
        client_id: str = "cortex-google-client",
        client_secret: str = "cortex-google-secret",  # noqa: S107 - a fake's secret
        *,
        page_size: int = 250,
        minimal_cancelled: bool = False,
    ) -> None:
        self.oauth = FakeOAuth(client_id, client_secret, issue_id_token=True)
        self.page_size = page_size
        self.minimal_cancelled = minimal_cancelled
        self._state = _State()
        self._lock = self.oauth.lock
        api = API_PREFIX
        self.app = Starlette(
            routes=[
                *self.oauth.routes(),
                Route(f"{api}/users/me/calendarList", self._calendar_list, methods=["GET"]),
                Route(f"{api}/calendars/{{cal}}/events", self._list_events, methods=["GET"]),
                Route(f"{api}/calendars/{{cal}}/events", self._insert, methods=["POST"]),
                Route(f"{api}/calendars/{{cal}}/events/{{eid}}", self._get, methods=["GET"]),
                Route(f"{api}/calendars/{{cal}}/events/{{eid}}", self._delete, methods=["DELETE"]),
                Route(f"{api}/calendars/{{cal}}/events/{{eid}}", self._patch, methods=["PATCH"]),
                Route(
                    f"{api}/calendars/{{cal}}/events/{{eid}}/instances",
                    self._instances,
                    methods=["GET"],
                ),
            ]
        )

    # -- controls ------------------------------------------------------------------------

    def add_user(self, email: str) -> None:
        self.oauth.add_user(email)

    def issue_token(self, email: str) -> str:
        """A valid access token for ``email`` (skipping the OAuth flow)."""
        return self.oauth.issue_tokens(email)[0]

    def revoke_refresh_token(self, refresh_token: str) -> None:
        self.oauth.revoke_refresh_token(refresh_token)

    def expire_access_token(self, access_token: str) -> None:
        self.oauth.expire_access_token(access_token)

    def add_calendar(
        self,
        email: str,
        calendar_id: str,
        summary: str,
        *,
        primary: bool = False,
        access_role: str = "owner",
        time_zone: str = "UTC",
    ) -> None:
        with self._lock:
            self.add_user(email)
            self._state.calendars[calendar_id] = _Calendar(
                calendar_id, email, summary, primary, access_role, time_zone
            )
            self._state.events.setdefault(calendar_id, {})

    def _bump(self) -> int:
        self._state.seq += 1
        return self._state.seq

    def add_event(
        self,
        calendar_id: str,
        start: datetime | date,
        end: datetime | date,
        *,
        event_id: str | None = None,
        summary: str = "",
        status: str = "confirmed",
        transparent: bool = False,
        ical_uid: str | None = None,
        **extra: Any,
    ) -> str:
        """Store one event (Google wire format; ``extra`` fields are copied as given)."""
        event_id = event_id or secrets.token_hex(13)
        data: dict[str, Any] = {
            "kind": "calendar#event",
            "id": event_id,
            "status": status,
            "summary": summary,
            "start": wire_time(start),
            "end": wire_time(end),
            "iCalUID": ical_uid or f"{event_id}@google.com",
            **extra,
        }
        if transparent:
            data["transparency"] = "transparent"
        with self._lock:
            self._state.events[calendar_id][event_id] = _Stored(data, self._bump())
        return event_id

    def add_recurring(
        self,
        calendar_id: str,
        occurrences: list[tuple[datetime, datetime]],
        *,
        master_id: str | None = None,
        summary: str = "",
        ical_uid: str | None = None,
    ) -> tuple[str, list[str]]:
        """A recurring event stored as its occurrences: ``(master_id, occurrence ids)``."""
        master_id = master_id or secrets.token_hex(13)
        uid = ical_uid or f"{master_id}@google.com"
        ids = []
        with self._lock:
            first_start, first_end = occurrences[0]
            master = {
                "kind": "calendar#event",
                "id": master_id,
                "status": "confirmed",
                "summary": summary,
                "start": wire_time(first_start),
                "end": wire_time(first_end),
                "iCalUID": uid,
                "recurrence": ["RRULE:FREQ=DAILY"],
            }
            self._state.events[calendar_id][master_id] = _Stored(master, self._bump(), True)
            for start, end in occurrences:
                stamp = start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
                ids.append(
                    self.add_event(
                        calendar_id,
                        start,
                        end,
                        event_id=f"{master_id}_{stamp}",
                        summary=summary,
                        ical_uid=uid,
                        recurringEventId=master_id,
                        originalStartTime=wire_time(start),
                    )
                )
        return master_id, ids

    def update_event(self, calendar_id: str, event_id: str, **fields: Any) -> None:
        """Change wire fields of an event (``start=wire_time(...)``, ``summary=...``)."""
        with self._lock:
            stored = self._state.events[calendar_id][event_id]
            stored.data.update(fields)
            stored.seq = self._bump()

    def cancel_event(self, calendar_id: str, event_id: str) -> None:
        """Delete as Google does: ``status: cancelled`` (a master takes its occurrences)."""
        with self._lock:
            self._cancel(calendar_id, event_id)

    def _cancel(self, calendar_id: str, event_id: str) -> None:
        events = self._state.events[calendar_id]
        stored = events[event_id]
        stored.data["status"] = "cancelled"
        stored.seq = self._bump()
        if stored.master:
            for other in events.values():
                if other.data.get("recurringEventId") == event_id:
                    other.data["status"] = "cancelled"
                    other.seq = self._bump()

    def events(self, calendar_id: str, *, include_cancelled: bool = False) -> list[dict[str, Any]]:
        """Copies of the stored events (masters excluded)."""
        with self._lock:
            return [
                copy.deepcopy(s.data)
                for s in self._state.events.get(calendar_id, {}).values()
                if not s.master and (include_cancelled or s.data.get("status") != "cancelled")
            ]

    def invalidate_sync_tokens(self) -> None:
        """Every sync token issued so far answers 410 from now on."""
        with self._lock:
            self._state.sync_floor = self._bump()

    # -- helpers -------------------------------------------------------------------------

    def _calendar(self, request: Request) -> tuple[_Calendar | None, Response | None]:
        email = self.oauth.user_for(request)
        if email is None:
            return None, _error(401, "Request had invalid authentication credentials.", "authError")
        calendar = self._state.calendars.get(request.path_params["cal"])
        if calendar is None or calendar.owner != email:
            return None, _error(404, "Not Found", "notFound")
        return calendar, None

    def _out(self, stored: _Stored) -> dict[str, Any]:
        data = copy.deepcopy(stored.data)
        if self.minimal_cancelled and data.get("status") == "cancelled":
            keep = {"kind", "id", "status", "recurringEventId", "originalStartTime"}
            data = {k: v for k, v in data.items() if k in keep}
        return data

    def _page(
        self, request: Request, items: list[dict[str, Any]], default_size: int
    ) -> tuple[list[dict[str, Any]], str]:
        try:
            size = min(int(request.query_params.get("maxResults", default_size)), self.page_size)
            offset = int(request.query_params.get("pageToken", "0"))
        except ValueError:
            size, offset = self.page_size, 0
        size = max(size, 1)
        rest = offset + size
        return items[offset:rest], (str(rest) if rest < len(items) else "")

    # -- endpoints -----------------------------------------------------------------------

    async def _calendar_list(self, request: Request) -> Response:
        email = self.oauth.user_for(request)
        if email is None:
            return _error(401, "Request had invalid authentication credentials.", "authError")
        with self._lock:
            items = [
                {
                    "kind": "calendar#calendarListEntry",
                    "id": c.id,
                    "summary": c.summary,
                    "timeZone": c.time_zone,
                    "accessRole": c.access_role,
                    **({"primary": True} if c.primary else {}),
                }
                for c in self._state.calendars.values()
                if c.owner == email
            ]
        page, next_token = self._page(request, items, 100)
        body: dict[str, Any] = {"kind": "calendar#calendarList", "items": page}
        if next_token:
            body["nextPageToken"] = next_token
        return JSONResponse(body)

    def _overlapping(
        self, stored: _Stored, zone: tzinfo, time_min: datetime | None, time_max: datetime | None
    ) -> bool:
        start = _instant(stored.data["start"], zone)
        end = _instant(stored.data["end"], zone)
        return (time_max is None or start < time_max) and (time_min is None or end > time_min)

    async def _list_events(self, request: Request) -> Response:
        q = request.query_params
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "Not Found", "notFound")
            sync_token = q.get("syncToken")
            single = _parse_bool(q.get("singleEvents"), False)
            if sync_token is not None and ({"timeMin", "timeMax", "iCalUID"} & set(q.keys())):
                return _error(400, "Sync token cannot be used with these filters.", "invalid")
            try:
                time_min = datetime.fromisoformat(q["timeMin"]) if "timeMin" in q else None
                time_max = datetime.fromisoformat(q["timeMax"]) if "timeMax" in q else None
                page_token = q.get("pageToken", "")
                offset, snapshot = 0, self._state.seq
                if page_token:  # "<offset>:<seq when the listing began>"
                    offset_text, _, snapshot_text = page_token.partition(":")
                    offset, snapshot = int(offset_text), int(snapshot_text)
            except ValueError:
                return _error(400, "Bad Request", "invalid")
            since = 0
            if sync_token is not None:
                if not sync_token.startswith("s") or not sync_token[1:].isdigit():
                    return _error(410, "Sync token is no longer valid.", "fullSyncRequired")
                since = int(sync_token[1:])
                if since < self._state.sync_floor:
                    return _error(410, "Sync token is no longer valid.", "fullSyncRequired")
            show_deleted = sync_token is not None or _parse_bool(q.get("showDeleted"), False)
            zone = calendar.zone
            chosen = [
                s
                for s in self._state.events[calendar.id].values()
                if (not s.master if single else "recurringEventId" not in s.data)
                and (show_deleted or s.data.get("status") != "cancelled")
                and (sync_token is None or s.seq > since)
                and (sync_token is not None or self._overlapping(s, zone, time_min, time_max))
            ]
            chosen.sort(key=lambda s: (_instant(s.data["start"], zone), s.data["id"]))
            items = [self._out(s) for s in chosen]
        try:
            size = max(min(int(q.get("maxResults", "250")), self.page_size), 1)
        except ValueError:
            size = self.page_size
        page = items[offset : offset + size]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "items": page,
        }
        if offset + size < len(items):
            body["nextPageToken"] = f"{offset + size}:{snapshot}"
        else:
            body["nextSyncToken"] = f"s{snapshot}"
        return JSONResponse(body)

    async def _get(self, request: Request) -> Response:
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "Not Found", "notFound")
            stored = self._state.events[calendar.id].get(request.path_params["eid"])
            if stored is None:
                return _error(404, "Not Found", "notFound")
            return JSONResponse(copy.deepcopy(stored.data))

    async def _instances(self, request: Request) -> Response:
        q = request.query_params
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "Not Found", "notFound")
            master_id = request.path_params["eid"]
            master = self._state.events[calendar.id].get(master_id)
            if master is None or not master.master:
                return _error(404, "Not Found", "notFound")
            if master.data.get("status") == "cancelled":
                return _error(410, "Resource has been deleted", "deleted")
            try:
                time_min = datetime.fromisoformat(q["timeMin"]) if "timeMin" in q else None
                time_max = datetime.fromisoformat(q["timeMax"]) if "timeMax" in q else None
            except ValueError:
                return _error(400, "Bad Request", "invalid")
            show_deleted = _parse_bool(q.get("showDeleted"), False)
            zone = calendar.zone
            chosen = [
                s
                for s in self._state.events[calendar.id].values()
                if s.data.get("recurringEventId") == master_id
                and (show_deleted or s.data.get("status") != "cancelled")
                and self._overlapping(s, zone, time_min, time_max)
            ]
            chosen.sort(key=lambda s: _instant(s.data["start"], zone))
            items = [self._out(s) for s in chosen]
        return JSONResponse(
            {"kind": "calendar#events", "timeZone": calendar.time_zone, "items": items}
        )

    async def _insert(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Parse Error", "parseError")
        if not isinstance(body, dict) or "start" not in body or "end" not in body:
            return _error(400, "Missing start or end.", "required")
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "Not Found", "notFound")
            if calendar.access_role not in {"owner", "writer"}:
                return _error(403, "Forbidden", "forbidden")
            events = self._state.events[calendar.id]
            event_id = body.get("id") or secrets.token_hex(13)
            if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
                return _error(400, "Invalid resource id value.", "invalid")
            if event_id in events:
                return _error(409, "The requested identifier already exists.", "duplicate")
            data = {
                **body,
                "kind": "calendar#event",
                "id": event_id,
                "status": "confirmed",
                "iCalUID": body.get("iCalUID") or f"{event_id}@google.com",
            }
            events[event_id] = _Stored(data, self._bump())
            return JSONResponse(copy.deepcopy(data))

    async def _delete(self, request: Request) -> Response:
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "Not Found", "notFound")
            if calendar.access_role not in {"owner", "writer"}:
                return _error(403, "Forbidden", "forbidden")
            event_id = request.path_params["eid"]
            stored = self._state.events[calendar.id].get(event_id)
            if stored is None:
                return _error(404, "Not Found", "notFound")
            if stored.data.get("status") == "cancelled":
                return _error(410, "Resource has been deleted", "deleted")
            self._cancel(calendar.id, event_id)
        return Response(status_code=204)

    async def _patch(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Parse Error", "parseError")
        if not isinstance(body, dict):
            return _error(400, "Parse Error", "parseError")
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "Not Found", "notFound")
            if calendar.access_role not in {"owner", "writer"}:
                return _error(403, "Forbidden", "forbidden")
            stored = self._state.events[calendar.id].get(request.path_params["eid"])
            if stored is None:
                return _error(404, "Not Found", "notFound")
            data = _merged(stored.data, body)
            for name in ("kind", "id", "iCalUID"):  # not changed by a patch
                if name in stored.data:
                    data[name] = stored.data[name]
            try:
                _instant(data["start"], calendar.zone)
                _instant(data["end"], calendar.zone)
            except (KeyError, TypeError, ValueError):
                return _error(400, "Invalid start or end.", "invalid")
            if (data["start"], data["end"]) != (stored.data["start"], stored.data["end"]):
                data["sequence"] = int(stored.data.get("sequence", 0)) + 1
            stored.data = data
            stored.seq = self._bump()
            return JSONResponse(copy.deepcopy(data))
