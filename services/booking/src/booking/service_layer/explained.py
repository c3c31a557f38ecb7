"""The owner's explained availability: the calendars' explained answer and the owner's own
bookings as named busy sources, each day partitioned by ``booking.domain.explain``, and the
domain's reasons as the contract's (``contracts.booking.BusyBlock``).

No I/O here: ``availability`` reads the busy time (one read for the whole range) and hands
it over."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.adapters.booked_time import Booked
from booking.domain import availability as engine
from booking.domain import explain
from contracts import booking as msg
from contracts import calendars as cal

MINUTE = timedelta(minutes=1)
Source = msg.CalendarEventBusy | msg.BookingBusy | msg.UnknownBusy


def sources(
    free_busy: cal.FreeBusy, booked: Sequence[Booked], zone: ZoneInfo
) -> list[explain.Busy[Source]]:
    """Every busy interval with what it is: the calendars' events (explain lists them all),
    the owner's active bookings, and time no calendar source could vouch for (one per
    source in error)."""
    found: list[explain.Busy[Source]] = []
    for event in free_busy.events:
        start, end = event.start.astimezone(zone), event.end.astimezone(zone)
        found.append(
            explain.Busy(
                start,
                end,
                msg.CalendarEventBusy(
                    start=start,
                    end=end,
                    calendar_id=event.calendar_id,
                    calendar_name=event.calendar_name,
                    summary=event.summary,
                    booking_id=event.booking_id,
                ),
            )
        )
    for row in booked:
        start, end = row.start_at.astimezone(zone), row.end_at.astimezone(zone)
        status = msg.BookingStatus(row.status)
        found.append(
            explain.Busy(
                start, end, msg.BookingBusy(booking_id=row.id, status=status, start=start, end=end)
            )
        )
    failing = [
        msg.UnknownBusy(
            connection_id=s.connection_id,
            provider=s.provider.value,
            calendar_id=s.calendar_id,
            status=s.status.value,
            reason=s.reason,
        )
        for s in free_busy.sources
        if not s.known
    ] or [msg.UnknownBusy()]
    for interval in free_busy.unknown:
        found.extend(explain.Busy(interval.start, interval.end, why) for why in failing)
    return found


def _reason(reason: explain.Reason[Source], zone: ZoneInfo) -> msg.BusyReason:
    match reason:
        case explain.OutsideWorkingHours():
            return msg.OutsideWorkingHours()
        case explain.MinNotice(hours=hours, earliest=earliest):
            return msg.MinNotice(hours=hours, earliest=earliest.astimezone(zone))
        case explain.MaxAdvance(days=days, latest=latest):
            return msg.MaxAdvance(days=days, latest=latest.astimezone(zone))
        case explain.Occupied(source=source):
            return source
        case explain.Buffer(minutes=minutes, after=after, before=before):
            return msg.BufferBusy(minutes=minutes, after=after, before=before)
        case explain.TooShort(free=free, duration_minutes=duration):
            return msg.TooShort(free_minutes=free // MINUTE, duration_minutes=duration)


def explain_days(
    rules: engine.Rules,
    days: Sequence[date],
    tz_name: str,
    duration: int,
    busy: Sequence[explain.Busy[Source]],
    now: datetime,
) -> list[msg.DaySlots]:
    """Each day's free windows (availability's) and the rest of it, explained."""
    zone = ZoneInfo(tz_name)
    answer = []
    for day in days:
        parts = explain.explain_day(rules, day, tz_name, duration, busy, now)
        answer.append(
            msg.DaySlots(
                day=day,
                slots=[msg.Slot(start=s, end=e) for s, e in parts.free],
                busy=[
                    msg.BusyBlock(
                        start=block.start,
                        end=block.end,
                        reasons=[_reason(r, zone) for r in block.reasons],
                    )
                    for block in parts.busy
                ],
            )
        )
    return answer
