"""iCalendar (RFC 5545) in and out: expand a calendar object into occurrences, build an event.

Pure functions, no I/O. Every time leaving this module is a timezone-aware datetime in UTC;
intervals are half-open ``[start, end)``.

* Floating times (no ``TZID``, no ``Z``) are wall-clock times of the calendar owner: they are
  read in ``default_tz``.
* All-day events (``DATE`` values) block local midnight to local midnight in ``default_tz``.
* Both keep their wall-clock times (``RemoteEvent.local_start``/``local_end``), so that a
  change of the owner's zone places them again (:func:`wall_clock_to_utc`).
* A time zone that cannot be resolved (a ``TZID`` with neither a ``VTIMEZONE`` nor a known
  IANA or Windows name) is an error, not a guess: a wrong guess would move busy time.
* Anything malformed in a ``VEVENT`` raises :class:`IcalError`; nothing that might block time
  is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import recurring_ical_events  # type: ignore[import-untyped]
from icalendar import Calendar, Component, Event, vCalAddress

from calendars.domain.remote import RemoteEvent

PRODID = "-//Cortex//Scheduling//EN"

# Occurrences are asked from the library over a wider span and then filtered exactly here:
# the library compares floating and all-day values in the zone of the query bounds (UTC),
# while we read them in ``default_tz``, which is at most 14 hours away from UTC.
_QUERY_MARGIN = timedelta(days=2)

_STATUSES = {"CONFIRMED": "confirmed", "TENTATIVE": "tentative", "CANCELLED": "cancelled"}
_TIME_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")


class IcalError(ValueError):
    """The iCalendar data is malformed; ``str(exc)`` says what and where."""


# --- reading ----------------------------------------------------------------------------


def expand_ics(
    ics: str | bytes,
    start: datetime,
    end: datetime,
    default_tz: ZoneInfo | str = "UTC",
) -> list[RemoteEvent]:
    """Every event occurrence of one iCalendar object that overlaps ``[start, end)``.

    Recurrences are expanded (RRULE, RDATE, EXDATE and RECURRENCE-ID overrides, including
    cancelled ones, which come back with ``status="cancelled"``). Zero-length events are
    left out: they block nothing. The result is sorted by start, end, uid.
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    tz = _zone(default_tz)
    if end <= start:
        return []
    calendar = _parse(ics)
    recurring_uids = _validate(calendar)

    query_start = start.astimezone(UTC) - _QUERY_MARGIN
    query_end = end.astimezone(UTC) + _QUERY_MARGIN
    try:
        occurrences: Iterable[Component] = recurring_ical_events.of(calendar).between(
            query_start, query_end
        )
        events = [_to_remote_event(item, tz, recurring_uids) for item in occurrences]
    except IcalError:
        raise
    except Exception as exc:  # the library raises many types on bad recurrence data
        raise IcalError(f"Could not expand the calendar's recurrences: {exc}") from exc

    result = [
        event for event in events if event is not None and event.start < end and event.end > start
    ]
    result.sort(key=lambda event: (event.start, event.end, event.uid, event.recurrence_id))
    return result


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _zone(default_tz: ZoneInfo | str) -> tzinfo:
    if isinstance(default_tz, ZoneInfo):
        return default_tz
    try:
        return ZoneInfo(default_tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"Unknown time zone {default_tz!r}") from exc


def _parse(ics: str | bytes) -> Calendar:
    if isinstance(ics, bytes):
        try:
            ics = ics.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IcalError("The calendar data is not valid UTF-8") from exc
    if not ics.strip():
        raise IcalError("The calendar data is empty")
    try:
        parsed = Calendar.from_ical(ics)
    except Exception as exc:  # icalendar raises ValueError, IndexError, ... on bad input
        raise IcalError(f"The calendar data could not be parsed: {exc}") from exc
    if not isinstance(parsed, Calendar) or parsed.name != "VCALENDAR":
        raise IcalError("The calendar data is not a VCALENDAR object")
    return parsed


def _validate(calendar: Calendar) -> set[str]:
    """Refuse what would make busy time wrong; return the UIDs that form recurring series."""
    _check_errors(calendar, "VCALENDAR")
    for zone in calendar.walk("VTIMEZONE"):
        _check_errors(zone, f"VTIMEZONE {zone.get('TZID', '')!s}".rstrip())
        for part in zone.subcomponents:
            _check_errors(part, f"VTIMEZONE {zone.get('TZID', '')!s} {part.name}")

    recurring: set[str] = set()
    for event in calendar.walk("VEVENT"):
        uid = _validate_event(event)
        if any(name in event for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
            recurring.add(uid)
    return recurring


def _validate_event(event: Component) -> str:
    """Refuse a VEVENT whose time would be wrong; its UID."""
    uid = str(event.get("UID", "")).strip()
    where = f"VEVENT {uid!r}" if uid else "VEVENT"
    _check_errors(event, where)
    if not uid:
        raise IcalError("A VEVENT has no UID")
    if "DTSTART" not in event:
        raise IcalError(f"{where} has no DTSTART")
    for name in _TIME_PROPERTIES:
        _check_time_zones(event, name, where)

    dtstart = _single(event, "DTSTART", where)
    begin = dtstart.dt
    if not isinstance(begin, date):
        raise IcalError(f"{where}: DTSTART is not a date or date-time")
    if "DTEND" in event and "DURATION" in event:
        raise IcalError(f"{where} has both DTEND and DURATION")
    if "DTEND" in event:
        _validate_end(begin, _single(event, "DTEND", where).dt, where)
    if "DURATION" in event:
        duration = _single(event, "DURATION", where).dt
        if not isinstance(duration, timedelta):
            raise IcalError(f"{where}: DURATION is not a duration")
        if duration < timedelta(0):
            raise IcalError(f"{where} has a negative DURATION")
    return uid


def _validate_end(begin: date, finish: object, where: str) -> None:
    """DTEND is a value of DTSTART's kind, not before it."""
    if not isinstance(finish, date) or isinstance(finish, datetime) != isinstance(begin, datetime):
        raise IcalError(f"{where}: DTEND is not the same kind of value as DTSTART")
    if (
        isinstance(begin, datetime)
        and isinstance(finish, datetime)
        and (begin.tzinfo is None) != (finish.tzinfo is None)
    ):
        raise IcalError(f"{where}: DTSTART and DTEND mix floating and zoned time")
    if finish < begin:
        raise IcalError(f"{where} ends before it starts")


def _check_errors(component: Component, where: str) -> None:
    errors = getattr(component, "errors", None) or []
    if errors:
        details = "; ".join(_describe_error(error) for error in errors)
        raise IcalError(f"{where} is malformed: {details}")


def _describe_error(error: Any) -> str:
    if isinstance(error, tuple) and len(error) == 2:
        return f"{error[0]}: {error[1]}"
    return str(error)


def _single(event: Component, name: str, where: str) -> Any:
    value = event.get(name)
    if isinstance(value, list):
        raise IcalError(f"{where} has more than one {name}")
    return value


def _check_time_zones(event: Component, name: str, where: str) -> None:
    """A TZID that icalendar could not resolve leaves a naive datetime behind: refuse it."""
    raw = event.get(name)
    if raw is None:
        return
    for value in raw if isinstance(raw, list) else [raw]:
        tzid = getattr(value, "params", {}).get("TZID")
        if not tzid:
            continue
        # EXDATE and RDATE hold lists; an RDATE may be a period (start, end or duration).
        times = [item.dt for item in value.dts] if hasattr(value, "dts") else [value.dt]
        for item in times:
            moment = item[0] if isinstance(item, tuple) else item
            if isinstance(moment, datetime) and moment.tzinfo is None:
                raise IcalError(f"{where}: unknown time zone {tzid!s} in {name}")


def _to_remote_event(
    component: Component, tz: tzinfo, recurring_uids: set[str]
) -> RemoteEvent | None:
    uid = str(component.get("UID", "")).strip()
    raw_start = _moment(component, "DTSTART")
    raw_end = _moment(component, "DTEND") if "DTEND" in component else raw_start
    start = _to_utc(raw_start, tz)
    end = _to_utc(raw_end, tz)
    local_start, local_end = _wall_clock(raw_start), _wall_clock(raw_end)
    if end <= start:
        return None  # zero length: blocks nothing
    recurrence_id = ""
    if uid in recurring_uids and "RECURRENCE-ID" in component:
        recurrence_id = _to_utc(_moment(component, "RECURRENCE-ID"), tz).isoformat()
    status = _STATUSES.get(str(component.get("STATUS", "CONFIRMED")).strip().upper())
    return RemoteEvent(
        uid=uid,
        start=start,
        end=end,
        summary=str(component.get("SUMMARY", "")),
        status=status or "confirmed",
        transparent=str(component.get("TRANSP", "OPAQUE")).strip().upper() == "TRANSPARENT",
        all_day=not isinstance(raw_start, datetime),
        recurrence_id=recurrence_id,
        local_start=local_start if local_end is not None else None,
        local_end=local_end if local_start is not None else None,
    )


def _moment(component: Component, name: str) -> date:
    """The date or date-time value of a single-valued property (a datetime is a date)."""
    prop: Any = component.get(name)
    value = getattr(prop, "dt", None)
    if not isinstance(value, date):
        raise IcalError(f"VEVENT {component.get('UID', '')!s}: {name} is not a date or date-time")
    return value


def _to_utc(value: date, tz: tzinfo) -> datetime:
    """A DATE is local midnight in ``tz``; a floating time is a wall-clock time in ``tz``."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    wall = _wall_clock(value)
    assert wall is not None
    return wall_clock_to_utc(wall, tz)


def _wall_clock(value: date) -> datetime | None:
    """The naive wall-clock time of a DATE (its midnight) or a floating time; None when the
    value has a zone of its own."""
    if isinstance(value, datetime):
        return value if value.tzinfo is None else None
    return datetime.combine(value, time(0))


def wall_clock_to_utc(wall: datetime, zone: tzinfo | str) -> datetime:
    """A naive wall-clock time read in ``zone``, in UTC: how floating and all-day times are
    placed, at expansion and again when the owner's zone changes (one rule for both)."""
    return wall.replace(tzinfo=_zone(zone) if isinstance(zone, str) else zone).astimezone(UTC)


def wall_clock_span(start: datetime, end: datetime, zone: str) -> tuple[datetime, datetime]:
    """A floating or all-day event's wall-clock times placed in ``zone``, in UTC; it never
    ends before it starts (a zone's transition may fold its end before its start)."""
    placed = wall_clock_to_utc(start, zone)
    return placed, max(placed, wall_clock_to_utc(end, zone))


# --- writing ----------------------------------------------------------------------------


def event_ics(
    uid: str,
    start: datetime,
    end: datetime,
    summary: str,
    description: str = "",
    attendee_email: str = "",
    organizer_email: str = "",
) -> str:
    """A VCALENDAR with one opaque, confirmed VEVENT; times are written in UTC."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    if end <= start:
        raise ValueError("end must be after start")
    if not uid.strip():
        raise ValueError("uid must not be empty")

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")

    event = Event()
    event.add("uid", _one_line(uid))
    event.add("dtstamp", datetime.now(UTC).replace(microsecond=0))
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", end.astimezone(UTC))
    event.add("summary", summary)
    if description:
        event.add("description", description)
    organizer = _mail_address(organizer_email)
    if organizer:
        event.add("organizer", vCalAddress(f"mailto:{organizer}"))
    attendee = _mail_address(attendee_email)
    if attendee:
        address = vCalAddress(f"mailto:{attendee}")
        address.params["ROLE"] = "REQ-PARTICIPANT"
        address.params["PARTSTAT"] = "NEEDS-ACTION"
        address.params["RSVP"] = "TRUE"
        event.add("attendee", address)
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data.decode("utf-8")


def _one_line(text: str) -> str:
    return "".join(ch for ch in text if ch not in "\r\n")


def _mail_address(email: str) -> str:
    """The bare address: line breaks and control characters removed, no ``mailto:``."""
    cleaned = "".join(ch for ch in email if ch.isprintable()).strip()
    if cleaned.lower().startswith("mailto:"):
        cleaned = cleaned[len("mailto:") :].strip()
    return cleaned


def moved_ics(
    ics: str | bytes,
    uid: str,
    start: datetime,
    end: datetime,
    summary: str | None = None,
    description: str | None = None,
    default_tz: ZoneInfo | str = "UTC",
) -> str | None:
    """The calendar object with its event ``uid`` moved to ``[start, end)`` in place: the
    same UID and everything else kept, DTSTART/DTEND written in UTC, SEQUENCE one more,
    DTSTAMP now; a ``summary`` or ``description`` given replaces the event's.

    None when the event already is there (with those texts): nothing to write. Raises
    :class:`IcalError` when the object holds no single such event."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    if end <= start:
        raise ValueError("end must be after start")
    calendar = _parse(ics)
    masters = [
        event
        for event in calendar.walk("VEVENT")
        if str(event.get("UID", "")).strip() == uid and "RECURRENCE-ID" not in event
    ]
    if len(masters) != 1:
        raise IcalError(f"The calendar object holds no single event {uid!r}")
    event = masters[0]
    _validate_event(event)
    if _span(event, _zone(default_tz)) == (start.astimezone(UTC), end.astimezone(UTC)) and (
        _texts_kept(event, summary, description)
    ):
        return None
    sequence = _sequence(event)
    for name in ("DTSTART", "DTEND", "DURATION", "DTSTAMP", "LAST-MODIFIED", "SEQUENCE"):
        event.pop(name, None)
    now = datetime.now(UTC).replace(microsecond=0)
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", end.astimezone(UTC))
    event.add("dtstamp", now)
    event.add("last-modified", now)
    event.add("sequence", sequence + 1)
    if summary is not None:
        event.pop("SUMMARY", None)
        event.add("summary", summary)
    if description is not None:
        event.pop("DESCRIPTION", None)
        if description:
            event.add("description", description)
    data: bytes = calendar.to_ical()
    return data.decode("utf-8")


def _span(event: Component, tz: tzinfo) -> tuple[datetime, datetime]:
    """The event's first ``[start, end)`` in UTC (DTEND, else DTSTART plus DURATION)."""
    begin = _to_utc(_moment(event, "DTSTART"), tz)
    if "DTEND" in event:
        return begin, _to_utc(_moment(event, "DTEND"), tz)
    duration = event.get("DURATION")
    return begin, begin + (duration.dt if duration is not None else timedelta(0))


def _texts_kept(event: Component, summary: str | None, description: str | None) -> bool:
    return (summary is None or str(event.get("SUMMARY", "")) == summary) and (
        description is None or str(event.get("DESCRIPTION", "")) == description
    )


def _sequence(event: Component) -> int:
    try:
        return max(int(str(event.get("SEQUENCE", 0)).strip() or 0), 0)
    except ValueError:
        return 0
