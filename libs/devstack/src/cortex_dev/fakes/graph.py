"""A stateful fake of the Microsoft identity platform and Microsoft Graph calendars.

Serves (below :data:`API_PREFIX`, so ``base_url`` is ``<server>/v1.0``):

* ``GET /me`` (``mail``, ``userPrincipalName``)
* ``GET /me/calendars`` (``$top``/``$skip``, ``@odata.nextLink``)
* ``GET /me/calendars/{id}/calendarView?startDateTime&endDateTime`` (paged)
* ``GET /me/calendars/{id}/calendarView/delta``: a first call with the window starts a
  round (pages via ``$skiptoken`` links) ending with an ``@odata.deltaLink``
  (``$deltatoken``); following it returns what changed since, removed events (or events
  that left the window) as ``{"id": ..., "@removed": {"reason": "deleted"}}``. After
  :meth:`FakeGraph.invalidate_delta_links`: 410 ``syncStateNotFound``.
* ``GET /me/calendars/{id}/events`` with ``$filter=singleValueExtendedProperties/Any(ep:
  ep/id eq '...' and ep/value eq '...')`` (the only filter understood)
* ``POST /me/calendars/{id}/events`` (a ``transactionId`` seen before returns that event)
* ``PATCH /me/calendars/{id}/events/{eventId}`` (the given properties replaced, ``id``
  and ``iCalUId`` kept; 200 with the event; 404 ``ErrorItemNotFound``)
* ``DELETE /me/calendars/{id}/events/{eventId}`` (204; 404 ``ErrorItemNotFound``)

plus ``/authorize`` and ``/token`` (:class:`cortex_dev.fakes.server.FakeOAuth`; refresh
tokens rotate, as Microsoft's do). Every API call needs a live Bearer token (401).
Events are stored as occurrences with UTC times; the ``Prefer`` headers received are
recorded in :attr:`FakeGraph.prefer_headers`.
"""

from __future__ import annotations

import copy
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cortex_dev.fakes.server import FakeOAuth

API_PREFIX = "/v1.0"
_FILTER = re.compile(
    r"singleValueExtendedProperties/Any\(\s*(\w+)\s*:\s*\1/id eq '((?:[^']|'')*)'"
    r"\s+and\s+\1/value eq '((?:[^']|'')*)'\s*\)",
    re.IGNORECASE,
)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def wire_time(moment: datetime | date) -> dict[str, str]:
    """A Graph dateTimeTimeZone in UTC (a date: its midnight, for all-day events)."""
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(), UTC)
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return {"dateTime": naive.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", "timeZone": "UTC"}


def _instant(value: dict[str, Any]) -> datetime:
    text = re.sub(r"(\.\d{6})\d+", r"\1", value["dateTime"])
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _Calendar:
    id: str
    owner: str
    name: str
    default: bool
    can_edit: bool


@dataclass
class _Stored:
    data: dict[str, Any]
    seq: int


@dataclass
class _Delta:
    calendar_id: str
    start: datetime
    end: datetime
    seq: int  # changes after this
    known: frozenset[str] = frozenset()  # the ids in the window at that point


@dataclass
class _Round:
    """A round's remaining pages (kept server side, as Graph keeps them behind $skiptoken)."""

    calendar_id: str
    items: list[dict[str, Any]]
    delta: _Delta


@dataclass
class _State:
    users: dict[str, str] = field(default_factory=dict)  # email -> userPrincipalName
    calendars: dict[str, _Calendar] = field(default_factory=dict)
    events: dict[str, dict[str, _Stored]] = field(default_factory=dict)
    removed: dict[str, dict[str, int]] = field(default_factory=dict)  # cal -> id -> seq
    deltas: dict[str, _Delta] = field(default_factory=dict)
    rounds: dict[str, _Round] = field(default_factory=dict)
    seq: int = 0


class FakeGraph:
    """The fake and its controls; serve :attr:`app` (e.g. with ``run_in_thread``)."""

    def __init__(
        self,
        client_id: str = "cortex-graph-client",
        client_secret: str = "cortex-graph-secret",  # noqa: S107 - a fake's secret
        *,
        page_size: int = 100,
    ) -> None:
        self.oauth = FakeOAuth(client_id, client_secret, rotate_refresh_tokens=True)
        self.page_size = page_size
        self.prefer_headers: list[str] = []
        self._state = _State()
        self._lock = self.oauth.lock
        api = f"{API_PREFIX}/me"
        view = f"{api}/calendars/{{cal}}/calendarView"
        self.app = Starlette(
            routes=[
                *self.oauth.routes(),
                Route(api, self._me, methods=["GET"]),
                Route(f"{api}/calendars", self._calendars, methods=["GET"]),
                Route(view, self._calendar_view, methods=["GET"]),
                Route(f"{view}/delta", self._delta, methods=["GET"]),
                Route(f"{api}/calendars/{{cal}}/events", self._list_events, methods=["GET"]),
                Route(f"{api}/calendars/{{cal}}/events", self._create, methods=["POST"]),
                Route(f"{api}/calendars/{{cal}}/events/{{eid}}", self._delete, methods=["DELETE"]),
                Route(f"{api}/calendars/{{cal}}/events/{{eid}}", self._patch, methods=["PATCH"]),
            ]
        )

    # -- controls ------------------------------------------------------------------------

    def add_user(self, email: str, user_principal_name: str | None = None) -> None:
        with self._lock:
            self.oauth.add_user(email)
            self._state.users[email] = user_principal_name or email

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
        name: str,
        *,
        default: bool = False,
        can_edit: bool = True,
    ) -> None:
        with self._lock:
            if email not in self._state.users:
                self.add_user(email)
            self._state.calendars[calendar_id] = _Calendar(
                calendar_id, email, name, default, can_edit
            )
            self._state.events.setdefault(calendar_id, {})
            self._state.removed.setdefault(calendar_id, {})

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
        subject: str = "",
        is_all_day: bool = False,
        is_cancelled: bool = False,
        show_as: str = "busy",
        event_type: str = "singleInstance",
        series_master_id: str | None = None,
        **extra: Any,
    ) -> str:
        """Store one event occurrence (Graph wire format; ``extra`` copied as given)."""
        event_id = event_id or "AAMk" + secrets.token_urlsafe(24)
        data: dict[str, Any] = {
            "id": event_id,
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
            "subject": subject,
            "start": wire_time(start),
            "end": wire_time(end),
            "isAllDay": is_all_day,
            "isCancelled": is_cancelled,
            "showAs": show_as,
            "type": event_type,
            "seriesMasterId": series_master_id,
            **extra,
        }
        with self._lock:
            self._state.events[calendar_id][event_id] = _Stored(data, self._bump())
            self._state.removed[calendar_id].pop(event_id, None)
        return event_id

    def update_event(self, calendar_id: str, event_id: str, **fields: Any) -> None:
        """Change wire fields of an event (``start=wire_time(...)``, ``subject=...``)."""
        with self._lock:
            stored = self._state.events[calendar_id][event_id]
            stored.data.update(fields)
            stored.seq = self._bump()

    def remove_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event as its owner would (delta then reports ``@removed``)."""
        with self._lock:
            self._remove(calendar_id, event_id)

    def _remove(self, calendar_id: str, event_id: str) -> None:
        del self._state.events[calendar_id][event_id]
        self._state.removed[calendar_id][event_id] = self._bump()

    def events(self, calendar_id: str) -> list[dict[str, Any]]:
        """Copies of the stored events."""
        with self._lock:
            return [copy.deepcopy(s.data) for s in self._state.events[calendar_id].values()]

    def invalidate_delta_links(self) -> None:
        """Every delta link issued so far answers 410 ``syncStateNotFound`` from now on."""
        with self._lock:
            self._state.deltas.clear()
            self._state.rounds.clear()

    # -- helpers -------------------------------------------------------------------------

    def _user(self, request: Request) -> str | None:
        if prefer := request.headers.get("prefer"):
            self.prefer_headers.append(prefer)
        return self.oauth.user_for(request)

    def _calendar(self, request: Request) -> tuple[_Calendar | None, Response | None]:
        email = self._user(request)
        if email is None:
            return None, _error(
                401, "InvalidAuthenticationToken", "Access token is empty or invalid."
            )
        calendar = self._state.calendars.get(request.path_params["cal"])
        if calendar is None or calendar.owner != email:
            return None, _error(404, "ErrorItemNotFound", "The specified object was not found.")
        return calendar, None

    def _api_base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/") + API_PREFIX

    @staticmethod
    def _in_window(stored: _Stored, start: datetime, end: datetime) -> bool:
        data = stored.data
        if data.get("type") == "seriesMaster":
            return False
        return _instant(data["start"]) < end and _instant(data["end"]) > start

    def _paged(
        self, request: Request, items: list[dict[str, Any]], link: str, query: dict[str, str]
    ) -> dict[str, Any]:
        try:
            top = int(request.query_params.get("$top", self.page_size))
            skip = int(request.query_params.get("$skip", "0"))
        except ValueError:
            top, skip = self.page_size, 0
        top = max(1, min(top, self.page_size))
        body: dict[str, Any] = {"value": items[skip : skip + top]}
        if skip + top < len(items):
            body["@odata.nextLink"] = f"{link}?{urlencode({**query, '$skip': skip + top})}"
        return body

    # -- endpoints -----------------------------------------------------------------------

    async def _me(self, request: Request) -> Response:
        email = self._user(request)
        if email is None:
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        with self._lock:
            upn = self._state.users.get(email, email)
        return JSONResponse({"id": upn, "mail": email, "userPrincipalName": upn})

    async def _calendars(self, request: Request) -> Response:
        email = self._user(request)
        if email is None:
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        with self._lock:
            items = [
                {"id": c.id, "name": c.name, "isDefaultCalendar": c.default, "canEdit": c.can_edit}
                for c in self._state.calendars.values()
                if c.owner == email
            ]
        link = f"{self._api_base(request)}/me/calendars"
        return JSONResponse(self._paged(request, items, link, {}))

    async def _calendar_view(self, request: Request) -> Response:
        q = request.query_params
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "ErrorItemNotFound", "Not found.")
            try:
                start, end = _parse(q.get("startDateTime")), _parse(q.get("endDateTime"))
            except ValueError:
                start = end = None
            if start is None or end is None:
                return _error(400, "ErrorInvalidParameter", "startDateTime and endDateTime.")
            chosen = [
                s
                for s in self._state.events[calendar.id].values()
                if self._in_window(s, start, end)
            ]
            chosen.sort(key=lambda s: (_instant(s.data["start"]), s.data["id"]))
            items = [copy.deepcopy(s.data) for s in chosen]
        link = f"{self._api_base(request)}/me/calendars/{calendar.id}/calendarView"
        query = {"startDateTime": q["startDateTime"], "endDateTime": q["endDateTime"]}
        return JSONResponse(self._paged(request, items, link, query))

    async def _delta(self, request: Request) -> Response:
        q = request.query_params
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "ErrorItemNotFound", "Not found.")
            link = f"{self._api_base(request)}/me/calendars/{calendar.id}/calendarView/delta"
            gone = _error(410, "syncStateNotFound", "The sync state was not found.")
            if "$skiptoken" in q:
                round_ = self._state.rounds.pop(q["$skiptoken"], None)
                if round_ is None or round_.calendar_id != calendar.id:
                    return gone
            elif "$deltatoken" in q:
                delta = self._state.deltas.get(q["$deltatoken"])
                if delta is None or delta.calendar_id != calendar.id:
                    return gone
                round_ = self._start_round(calendar.id, delta)
            else:
                try:
                    start, end = _parse(q.get("startDateTime")), _parse(q.get("endDateTime"))
                except ValueError:
                    start = end = None
                if start is None or end is None:
                    return _error(400, "ErrorInvalidParameter", "startDateTime and endDateTime.")
                round_ = self._start_round(calendar.id, _Delta(calendar.id, start, end, 0))
            page, round_.items = round_.items[: self.page_size], round_.items[self.page_size :]
            body: dict[str, Any] = {"value": page}
            if round_.items:
                token = secrets.token_urlsafe(16)
                self._state.rounds[token] = round_
                body["@odata.nextLink"] = f"{link}?{urlencode({'$skiptoken': token})}"
            else:
                token = secrets.token_urlsafe(16)
                self._state.deltas[token] = round_.delta
                body["@odata.deltaLink"] = f"{link}?{urlencode({'$deltatoken': token})}"
            return JSONResponse(body)

    def _start_round(self, calendar_id: str, since: _Delta) -> _Round:
        """Everything changed after ``since.seq`` in its window; the next delta state."""
        items: list[dict[str, Any]] = []
        in_window = {
            event_id
            for event_id, stored in self._state.events[calendar_id].items()
            if self._in_window(stored, since.start, since.end)
        }
        for event_id, stored in self._state.events[calendar_id].items():
            if stored.seq <= since.seq:
                continue
            if event_id in in_window:
                items.append(copy.deepcopy(stored.data))
            elif event_id in since.known:  # it left the window: removed, for the client
                items.append({"id": event_id, "@removed": {"reason": "deleted"}})
        for event_id, seq in self._state.removed[calendar_id].items():
            if seq > since.seq and event_id in since.known:
                items.append({"id": event_id, "@removed": {"reason": "deleted"}})
        following = _Delta(
            calendar_id, since.start, since.end, self._state.seq, frozenset(in_window)
        )
        return _Round(calendar_id, items, following)

    async def _list_events(self, request: Request) -> Response:
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "ErrorItemNotFound", "Not found.")
            events = list(self._state.events[calendar.id].values())
            condition = request.query_params.get("$filter")
            if condition is not None:
                match = _FILTER.fullmatch(condition.strip())
                if match is None:
                    return _error(400, "ErrorInvalidUrlQueryFilter", "Unsupported filter.")
                prop_id, value = (g.replace("''", "'") for g in match.group(2, 3))
                events = [
                    s
                    for s in events
                    if any(
                        p.get("id", "").lower() == prop_id.lower() and p.get("value") == value
                        for p in s.data.get("singleValueExtendedProperties") or []
                    )
                ]
            items = [copy.deepcopy(s.data) for s in events]
        return JSONResponse({"value": items})

    async def _create(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "RequestBodyRead", "Invalid JSON.")
        if not isinstance(body, dict) or "start" not in body or "end" not in body:
            return _error(400, "ErrorInvalidRequest", "start and end are required.")
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "ErrorItemNotFound", "Not found.")
            if not calendar.can_edit:
                return _error(403, "ErrorAccessDenied", "Access is denied.")
            transaction = body.get("transactionId")
            if transaction:
                for stored in self._state.events[calendar.id].values():
                    if stored.data.get("transactionId") == transaction:
                        return JSONResponse(copy.deepcopy(stored.data), status_code=201)
            try:
                start = wire_time(_instant(body["start"]))
                end = wire_time(_instant(body["end"]))
            except (KeyError, TypeError, ValueError):
                return _error(400, "ErrorInvalidRequest", "Bad start or end.")
            event_id = self.add_event(
                calendar.id,
                _instant(start),
                _instant(end),
                subject=str(body.get("subject", "")),
                **{k: v for k, v in body.items() if k not in {"subject", "start", "end"}},
            )
            return JSONResponse(
                copy.deepcopy(self._state.events[calendar.id][event_id].data), status_code=201
            )

    async def _delete(self, request: Request) -> Response:
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "ErrorItemNotFound", "Not found.")
            event_id = request.path_params["eid"]
            if event_id not in self._state.events[calendar.id]:
                return _error(404, "ErrorItemNotFound", "The specified object was not found.")
            if not calendar.can_edit:
                return _error(403, "ErrorAccessDenied", "Access is denied.")
            self._remove(calendar.id, event_id)
        return Response(status_code=204)

    async def _patch(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "RequestBodyRead", "Invalid JSON.")
        if not isinstance(body, dict):
            return _error(400, "RequestBodyRead", "Invalid JSON.")
        with self._lock:
            calendar, error = self._calendar(request)
            if calendar is None:
                return error or _error(404, "ErrorItemNotFound", "Not found.")
            stored = self._state.events[calendar.id].get(request.path_params["eid"])
            if stored is None:
                return _error(404, "ErrorItemNotFound", "The specified object was not found.")
            if not calendar.can_edit:
                return _error(403, "ErrorAccessDenied", "Access is denied.")
            changes = {k: v for k, v in body.items() if k not in {"id", "iCalUId"}}
            try:
                for name in ("start", "end"):
                    if name in changes:
                        changes[name] = wire_time(_instant(changes[name]))
            except (KeyError, TypeError, ValueError):
                return _error(400, "ErrorInvalidRequest", "Bad start or end.")
            stored.data.update(changes)
            stored.seq = self._bump()
            return JSONResponse(copy.deepcopy(stored.data))
