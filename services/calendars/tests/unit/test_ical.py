"""iCalendar in and out: recurrence expansion, time zones, all-day and floating times, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendars.domain.ical import (
    PRODID,
    IcalError,
    event_ics,
    expand_ics,
    moved_ics,
    wall_clock_to_utc,
)
from calendars.domain.intervals import busy_from_events
from calendars.domain.remote import RemoteEvent


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def calendar(*bodies: str, extra: str = "") -> str:
    """A VCALENDAR with one VEVENT per body (each body is its property lines)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//Test//EN"]
    if extra:
        lines += extra.strip().splitlines()
    for body in bodies:
        lines += ["BEGIN:VEVENT", *body.strip().splitlines(), "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(line.strip() for line in lines) + "\r\n"


def intervals(events: list[RemoteEvent]) -> list[tuple[datetime, datetime]]:
    return [(event.start, event.end) for event in events]


# --- a weekly series across the October DST change ------------------------------------

BERLIN_VTIMEZONE = """
BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""

CUSTOM_VTIMEZONE = BERLIN_VTIMEZONE.replace("W. Europe Standard Time", "Custom/Office Time")


def weekly_series(tzid: str, vtimezone: str = "") -> str:
    """Mondays 10:00-11:00 from 13 Oct 2025, six times (the DST change is on 26 Oct).

    13 Oct stays; 20 Oct is an EXDATE; 27 Oct moves to Tuesday 28 Oct 15:00-16:00;
    3 Nov is cancelled; 10 Nov stays; 17 Nov is outside the test window.
    """
    master = f"""
        UID:weekly-1@example.com
        DTSTAMP:20251001T000000Z
        SUMMARY:Team sync
        DTSTART;TZID={tzid}:20251013T100000
        DTEND;TZID={tzid}:20251013T110000
        RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6
        EXDATE;TZID={tzid}:20251020T100000
    """
    moved = f"""
        UID:weekly-1@example.com
        DTSTAMP:20251001T000000Z
        SUMMARY:Team sync (moved)
        RECURRENCE-ID;TZID={tzid}:20251027T100000
        DTSTART;TZID={tzid}:20251028T150000
        DTEND;TZID={tzid}:20251028T160000
        SEQUENCE:1
    """
    cancelled = f"""
        UID:weekly-1@example.com
        DTSTAMP:20251001T000000Z
        SUMMARY:Team sync
        RECURRENCE-ID;TZID={tzid}:20251103T100000
        DTSTART;TZID={tzid}:20251103T100000
        DTEND;TZID={tzid}:20251103T110000
        STATUS:CANCELLED
        SEQUENCE:1
    """
    return calendar(master, moved, cancelled, extra=vtimezone)


FIVE_WEEKS = (utc(2025, 10, 13), utc(2025, 11, 17))


@pytest.mark.parametrize(
    ("tzid", "vtimezone"),
    [
        ("Europe/Berlin", ""),  # IANA name without VTIMEZONE (Google, Fastmail, ...)
        ("Europe/Berlin", BERLIN_VTIMEZONE.replace("W. Europe Standard Time", "Europe/Berlin")),
        ("W. Europe Standard Time", BERLIN_VTIMEZONE),  # Outlook / Exchange style
        ("Custom/Office Time", CUSTOM_VTIMEZONE),  # only the VTIMEZONE knows it
    ],
)
def test_weekly_series_with_exdate_moved_and_cancelled_occurrences(
    tzid: str, vtimezone: str
) -> None:
    events = expand_ics(weekly_series(tzid, vtimezone), *FIVE_WEEKS)

    assert [(e.start, e.end, e.status, e.recurrence_id, e.summary) for e in events] == [
        # summer time: 10:00 local is 08:00Z
        (
            utc(2025, 10, 13, 8),
            utc(2025, 10, 13, 9),
            "confirmed",
            "2025-10-13T08:00:00+00:00",
            "Team sync",
        ),
        # 20 Oct: EXDATE. 27 Oct moved to Tuesday 15:00 local (winter time: 14:00Z)
        (
            utc(2025, 10, 28, 14),
            utc(2025, 10, 28, 15),
            "confirmed",
            "2025-10-27T09:00:00+00:00",
            "Team sync (moved)",
        ),
        # winter time: 10:00 local is 09:00Z
        (
            utc(2025, 11, 3, 9),
            utc(2025, 11, 3, 10),
            "cancelled",
            "2025-11-03T09:00:00+00:00",
            "Team sync",
        ),
        (
            utc(2025, 11, 10, 9),
            utc(2025, 11, 10, 10),
            "confirmed",
            "2025-11-10T09:00:00+00:00",
            "Team sync",
        ),
    ]
    assert {e.uid for e in events} == {"weekly-1@example.com"}
    assert all(e.start.tzinfo is UTC and e.end.tzinfo is UTC for e in events)
    assert not any(e.all_day or e.transparent for e in events)

    assert busy_from_events(events, *FIVE_WEEKS) == [
        (utc(2025, 10, 13, 8), utc(2025, 10, 13, 9)),
        (utc(2025, 10, 28, 14), utc(2025, 10, 28, 15)),
        (utc(2025, 11, 10, 9), utc(2025, 11, 10, 10)),
    ]


def test_weekly_series_window_is_half_open() -> None:
    ics = weekly_series("Europe/Berlin")
    # the window ends exactly when the 13 Oct occurrence starts: nothing
    assert expand_ics(ics, utc(2025, 10, 12), utc(2025, 10, 13, 8)) == []
    # the window starts exactly when it ends: nothing
    assert expand_ics(ics, utc(2025, 10, 13, 9), utc(2025, 10, 20)) == []
    # a window that only touches the inside of the occurrence finds it
    [event] = expand_ics(ics, utc(2025, 10, 13, 8, 30), utc(2025, 10, 13, 8, 31))
    assert (event.start, event.end) == (utc(2025, 10, 13, 8), utc(2025, 10, 13, 9))


def test_the_moved_occurrence_is_found_from_its_new_time_only() -> None:
    ics = weekly_series("Europe/Berlin")
    monday = expand_ics(ics, utc(2025, 10, 27), utc(2025, 10, 28))
    tuesday = expand_ics(ics, utc(2025, 10, 28), utc(2025, 10, 29))
    assert monday == []
    assert [(e.start, e.summary) for e in tuesday] == [(utc(2025, 10, 28, 14), "Team sync (moved)")]


def test_window_bounds_in_any_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    events = expand_ics(
        weekly_series("Europe/Berlin"),
        datetime(2025, 10, 13, tzinfo=berlin),
        datetime(2025, 11, 17, tzinfo=berlin),
    )
    assert len(events) == 4


def test_rdate_adds_occurrences() -> None:
    ics = calendar(
        """
        UID:rdate@example.com
        DTSTART:20251013T100000Z
        DTEND:20251013T110000Z
        RDATE:20251015T120000Z,20251016T120000Z
        RDATE;VALUE=PERIOD:20251017T120000Z/PT3H
        """
    )
    events = expand_ics(ics, utc(2025, 10, 1), utc(2025, 11, 1))
    assert intervals(events) == [
        (utc(2025, 10, 13, 10), utc(2025, 10, 13, 11)),
        (utc(2025, 10, 15, 12), utc(2025, 10, 15, 13)),
        (utc(2025, 10, 16, 12), utc(2025, 10, 16, 13)),
        (utc(2025, 10, 17, 12), utc(2025, 10, 17, 15)),
    ]
    assert [e.recurrence_id for e in events][:2] == [
        "2025-10-13T10:00:00+00:00",
        "2025-10-15T12:00:00+00:00",
    ]


def test_an_override_without_its_master_is_an_occurrence() -> None:
    # CalDAV servers send this when one is invited to a single occurrence only.
    ics = calendar(
        """
        UID:orphan@example.com
        RECURRENCE-ID:20251014T090000Z
        DTSTART:20251014T100000Z
        DTEND:20251014T110000Z
        """
    )
    [event] = expand_ics(ics, utc(2025, 10, 1), utc(2025, 11, 1))
    assert (event.start, event.end) == (utc(2025, 10, 14, 10), utc(2025, 10, 14, 11))
    assert event.recurrence_id == "2025-10-14T09:00:00+00:00"


def test_several_uids_in_one_calendar() -> None:
    ics = calendar(
        "UID:a\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z",
        "UID:b\nDTSTART:20251014T090000Z\nDTEND:20251014T093000Z\nRRULE:FREQ=DAILY;COUNT=2",
    )
    events = expand_ics(ics, utc(2025, 10, 14), utc(2025, 10, 16))
    assert [(e.uid, e.start, e.recurrence_id) for e in events] == [
        ("b", utc(2025, 10, 14, 9), "2025-10-14T09:00:00+00:00"),
        ("a", utc(2025, 10, 14, 10), ""),
        ("b", utc(2025, 10, 15, 9), "2025-10-15T09:00:00+00:00"),
    ]


# --- single events -----------------------------------------------------------------------


def test_single_event_fields() -> None:
    ics = calendar(
        """
        UID:single@example.com
        DTSTART:20251014T100000Z
        DTEND:20251014T110000Z
        SUMMARY:Dentist\\, then lunch
        STATUS:TENTATIVE
        """
    )
    assert expand_ics(ics, utc(2025, 10, 14), utc(2025, 10, 15)) == [
        RemoteEvent(
            uid="single@example.com",
            start=utc(2025, 10, 14, 10),
            end=utc(2025, 10, 14, 11),
            summary="Dentist, then lunch",
            status="tentative",
            transparent=False,
            all_day=False,
            recurrence_id="",
        )
    ]


def test_missing_summary_and_status_defaults() -> None:
    ics = calendar("UID:x\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z")
    [event] = expand_ics(ics, utc(2025, 10, 14), utc(2025, 10, 15))
    assert (event.summary, event.status, event.transparent) == ("", "confirmed", False)
    assert event.blocks


def test_all_day_event_spans_local_midnights_of_the_owner() -> None:
    ics = calendar(
        # 1-2 Nov 2025 in New York: EDT (UTC-4) until the DST change on 2 Nov, then EST
        "UID:trip\nDTSTART;VALUE=DATE:20251101\nDTEND;VALUE=DATE:20251103\nSUMMARY:Trip",
        # no DTEND: one day
        "UID:holiday\nDTSTART;VALUE=DATE:20251111",
    )
    events = expand_ics(ics, utc(2025, 10, 30), utc(2025, 11, 15), "America/New_York")
    assert [(e.uid, e.start, e.end, e.all_day) for e in events] == [
        ("trip", utc(2025, 11, 1, 4), utc(2025, 11, 3, 5), True),
        ("holiday", utc(2025, 11, 11, 5), utc(2025, 11, 12, 5), True),
    ]
    # the same data for an owner in UTC
    events = expand_ics(ics, utc(2025, 10, 30), utc(2025, 11, 15))
    assert intervals(events) == [
        (utc(2025, 11, 1), utc(2025, 11, 3)),
        (utc(2025, 11, 11), utc(2025, 11, 12)),
    ]


def test_all_day_event_is_selected_in_the_owners_zone() -> None:
    # 11 Nov in Tokyo is 10 Nov 15:00Z to 11 Nov 15:00Z
    ics = calendar("UID:holiday\nDTSTART;VALUE=DATE:20251111\nDTEND;VALUE=DATE:20251112")
    tokyo = ZoneInfo("Asia/Tokyo")
    assert expand_ics(ics, utc(2025, 11, 11, 15), utc(2025, 11, 12), tokyo) == []
    [event] = expand_ics(ics, utc(2025, 11, 10, 14), utc(2025, 11, 10, 16), tokyo)
    assert (event.start, event.end) == (utc(2025, 11, 10, 15), utc(2025, 11, 11, 15))


def test_recurring_all_day_event() -> None:
    ics = calendar("UID:gym\nDTSTART;VALUE=DATE:20251013\nRRULE:FREQ=DAILY;COUNT=3")
    events = expand_ics(ics, utc(2025, 10, 1), utc(2025, 11, 1), "Europe/Berlin")
    assert [(e.start, e.end, e.all_day, e.recurrence_id) for e in events] == [
        (utc(2025, 10, 12, 22), utc(2025, 10, 13, 22), True, "2025-10-12T22:00:00+00:00"),
        (utc(2025, 10, 13, 22), utc(2025, 10, 14, 22), True, "2025-10-13T22:00:00+00:00"),
        (utc(2025, 10, 14, 22), utc(2025, 10, 15, 22), True, "2025-10-14T22:00:00+00:00"),
    ]


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "Europe/Berlin", "UTC"])
def test_wall_clock_times_are_kept_and_place_the_event_in_any_zone(zone: str) -> None:
    """Floating and all-day events keep their wall-clock times: placed in another zone they
    are where expanding in that zone puts them (a zone change needs no provider)."""
    ics = calendar(
        "UID:float\nDTSTART:20251102T013000\nDTEND:20251102T030000\nRRULE:FREQ=DAILY;COUNT=3",
        "UID:trip\nDTSTART;VALUE=DATE:20251101\nDTEND;VALUE=DATE:20251103",
        "UID:zoned\nDTSTART:20251101T100000Z\nDTEND:20251101T110000Z",
    )
    window = (utc(2025, 10, 30), utc(2025, 11, 10))
    read_in_utc = expand_ics(ics, *window)
    assert {e.uid for e in read_in_utc if e.local_start is None} == {"zoned"}
    placed = sorted(
        (
            e.uid,
            wall_clock_to_utc(e.local_start, zone) if e.local_start else e.start,
            wall_clock_to_utc(e.local_end, zone) if e.local_end else e.end,
        )
        for e in read_in_utc
    )
    assert placed == sorted((e.uid, e.start, e.end) for e in expand_ics(ics, *window, zone))


@pytest.mark.parametrize("owner_zone", ["Europe/Berlin", ZoneInfo("Europe/Berlin")])
def test_floating_time_is_the_owners_wall_clock(owner_zone: ZoneInfo | str) -> None:
    ics = calendar("UID:float\nDTSTART:20251015T090000\nDTEND:20251015T100000")
    [event] = expand_ics(ics, utc(2025, 10, 15), utc(2025, 10, 16), owner_zone)
    assert (event.start, event.end, event.all_day) == (
        utc(2025, 10, 15, 7),
        utc(2025, 10, 15, 8),
        False,
    )
    [event] = expand_ics(ics, utc(2025, 10, 15), utc(2025, 10, 16))
    assert (event.start, event.end) == (utc(2025, 10, 15, 9), utc(2025, 10, 15, 10))


def test_transparent_and_cancelled_events_do_not_block() -> None:
    ics = calendar(
        "UID:busy\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z",
        "UID:free\nDTSTART:20251014T120000Z\nDTEND:20251014T130000Z\nTRANSP:TRANSPARENT",
        "UID:gone\nDTSTART:20251014T140000Z\nDTEND:20251014T150000Z\nSTATUS:CANCELLED",
        "UID:maybe\nDTSTART:20251014T160000Z\nDTEND:20251014T170000Z\nSTATUS:TENTATIVE",
    )
    window = (utc(2025, 10, 14), utc(2025, 10, 15))
    events = expand_ics(ics, *window)
    assert {e.uid: (e.status, e.transparent, e.blocks) for e in events} == {
        "busy": ("confirmed", False, True),
        "free": ("confirmed", True, False),
        "gone": ("cancelled", False, False),
        "maybe": ("tentative", False, True),
    }
    assert busy_from_events(events, *window) == [
        (utc(2025, 10, 14, 10), utc(2025, 10, 14, 11)),
        (utc(2025, 10, 14, 16), utc(2025, 10, 14, 17)),
    ]


def test_duration_instead_of_dtend() -> None:
    ics = calendar(
        "UID:d\nDTSTART;TZID=Europe/Berlin:20251015T090000\nDURATION:PT1H30M",
        "UID:days\nDTSTART;VALUE=DATE:20251020\nDURATION:P2D",
    )
    events = expand_ics(ics, utc(2025, 10, 15), utc(2025, 10, 30))
    assert [(e.uid, e.start, e.end, e.all_day) for e in events] == [
        ("d", utc(2025, 10, 15, 7), utc(2025, 10, 15, 8, 30), False),
        ("days", utc(2025, 10, 20), utc(2025, 10, 22), True),
    ]


def test_zero_length_event_is_skipped() -> None:
    ics = calendar(
        "UID:reminder\nDTSTART:20251015T090000Z",  # DATE-TIME without DTEND: zero length
        "UID:point\nDTSTART:20251015T100000Z\nDTEND:20251015T100000Z",
        "UID:real\nDTSTART:20251015T110000Z\nDTEND:20251015T113000Z",
    )
    events = expand_ics(ics, utc(2025, 10, 15), utc(2025, 10, 16))
    assert [e.uid for e in events] == ["real"]


def test_event_crossing_the_window_is_returned_whole_and_clipped_as_busy() -> None:
    ics = calendar(
        "UID:night\nDTSTART:20251012T230000Z\nDTEND:20251013T020000Z",
        "UID:late\nDTSTART:20251013T230000Z\nDTEND:20251014T010000Z",
        "UID:before\nDTSTART:20251012T200000Z\nDTEND:20251013T000000Z",
    )
    window = (utc(2025, 10, 13), utc(2025, 10, 14))
    events = expand_ics(ics, *window)
    assert [(e.uid, e.start, e.end) for e in events] == [
        ("night", utc(2025, 10, 12, 23), utc(2025, 10, 13, 2)),
        ("late", utc(2025, 10, 13, 23), utc(2025, 10, 14, 1)),
    ]
    assert busy_from_events(events, *window) == [
        (utc(2025, 10, 13), utc(2025, 10, 13, 2)),
        (utc(2025, 10, 13, 23), utc(2025, 10, 14)),
    ]


def test_todos_and_journals_are_ignored() -> None:
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        "BEGIN:VTODO\r\nUID:t\r\nDTSTART:20251015T090000Z\r\nDUE:20251015T100000Z\r\n"
        "END:VTODO\r\n"
        "BEGIN:VJOURNAL\r\nUID:j\r\nDTSTART:20251015T090000Z\r\nEND:VJOURNAL\r\n"
        "BEGIN:VEVENT\r\nUID:e\r\nDTSTART:20251015T090000Z\r\nDTEND:20251015T100000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert [e.uid for e in expand_ics(ics, utc(2025, 10, 15), utc(2025, 10, 16))] == ["e"]


def test_bytes_input_and_empty_calendar() -> None:
    ics = calendar("UID:x\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z\nSUMMARY:Café")
    [event] = expand_ics(ics.encode(), utc(2025, 10, 14), utc(2025, 10, 15))
    assert event.summary == "Café"
    assert expand_ics(calendar(), utc(2025, 10, 14), utc(2025, 10, 15)) == []


def test_window_must_be_aware_and_empty_window_is_empty() -> None:
    ics = calendar("UID:x\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        expand_ics(ics, datetime(2025, 10, 14), utc(2025, 10, 15))
    assert expand_ics(ics, utc(2025, 10, 15), utc(2025, 10, 14)) == []
    with pytest.raises(ValueError, match="Unknown time zone"):
        expand_ics(ics, utc(2025, 10, 14), utc(2025, 10, 15), "Mars/Olympus_Mons")


# --- malformed input -----------------------------------------------------------------------

GOOD = "UID:good\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z"


@pytest.mark.parametrize(
    ("ics", "message"),
    [
        ("", "empty"),
        ("this is not a calendar", "could not be parsed"),
        (b"\xff\xfe\x00garbage", "UTF-8"),
        ("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20251014T100000Z\r\nEND:VEVENT\r\n", "VCALENDAR"),
        (
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20251014T100000Z\r\n"
            "END:VCALENDAR\r\n",
            "could not be parsed",
        ),
        (calendar(GOOD) + calendar(GOOD), "could not be parsed"),
        # one bad VEVENT among good ones spoils the object
        (calendar(GOOD, "UID:bad\nDTSTART:2025101XT100000Z\nDTEND:20251014T110000Z"), "DTSTART"),
        (calendar(GOOD, "UID:bad\nDTSTART:20251014T100000Z\nthis line is garbage"), "'bad'"),
        (calendar(GOOD, "UID:bad\nDTEND:20251014T110000Z"), "no DTSTART"),
        (calendar(GOOD, "DTSTART:20251014T100000Z\nDTEND:20251014T110000Z"), "no UID"),
        (calendar("UID:bad\nDTSTART:20251014T100000Z\nDTEND:20251014T090000Z"), "ends before"),
        (calendar("UID:bad\nDTSTART:20251014T100000Z\nDURATION:-PT1H"), "negative"),
        (calendar("UID:bad\nDTSTART:20251014T100000Z\nDURATION:PXYZ"), "DURATION"),
        (
            calendar("UID:bad\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z\nDURATION:PT1H"),
            "both DTEND and DURATION",
        ),
        (
            calendar("UID:bad\nDTSTART;VALUE=DATE:20251014\nDTEND:20251014T110000Z"),
            "same kind",
        ),
        (
            calendar("UID:bad\nDTSTART:20251014T100000\nDTEND:20251014T110000Z"),
            "floating and zoned",
        ),
        (
            calendar("UID:bad\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z\nRRULE:FREQ=OFTEN"),
            "RRULE",
        ),
        (
            calendar(
                "UID:bad\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z\n"
                "RRULE:FREQ=DAILY\nEXDATE:2025AB"
            ),
            "EXDATE",
        ),
        (
            calendar(
                "UID:bad\nDTSTART;TZID=Nowhere/Land:20251014T100000\n"
                "DTEND;TZID=Nowhere/Land:20251014T110000"
            ),
            "unknown time zone Nowhere/Land",
        ),
        (
            calendar(
                "UID:bad\nDTSTART:20251014T100000Z\nDTEND:20251014T110000Z\n"
                "RRULE:FREQ=DAILY\nEXDATE;TZID=Nowhere/Land:20251015T100000"
            ),
            "unknown time zone",
        ),
    ],
)
def test_malformed_input_raises(ics: str | bytes, message: str) -> None:
    with pytest.raises(IcalError, match=message):
        expand_ics(ics, utc(2025, 10, 1), utc(2025, 11, 1))


def test_ical_error_is_a_value_error() -> None:
    assert issubclass(IcalError, ValueError)


# --- writing --------------------------------------------------------------------------------


def unfolded_lines(ics: str) -> list[str]:
    return ics.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")


def test_event_ics_round_trips() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 10, 28, 15, 0, tzinfo=berlin)
    summary = "Lunch, with; friends\nand a back\\slash"
    ics = event_ics(
        "booking-42@cortex",
        start,
        start + timedelta(minutes=45),
        summary,
        description="Agenda:\n1. food; 2. talk, maybe",
        attendee_email="guest@example.com",
        organizer_email="host@example.com",
    )
    lines = unfolded_lines(ics)
    assert lines[0] == "BEGIN:VCALENDAR"
    assert f"PRODID:{PRODID}" in lines
    assert "VERSION:2.0" in lines
    assert "UID:booking-42@cortex" in lines
    assert "DTSTART:20251028T140000Z" in lines
    assert "DTEND:20251028T144500Z" in lines
    assert "STATUS:CONFIRMED" in lines
    assert "TRANSP:OPAQUE" in lines
    assert r"SUMMARY:Lunch\, with\; friends\nand a back\\slash" in lines
    assert r"DESCRIPTION:Agenda:\n1. food\; 2. talk\, maybe" in lines
    assert any(
        line.startswith("ATTENDEE") and line.endswith(":mailto:guest@example.com") for line in lines
    )
    assert "ORGANIZER:mailto:host@example.com" in lines
    assert any(line.startswith("DTSTAMP:") and line.endswith("Z") for line in lines)

    [event] = expand_ics(ics, utc(2025, 10, 28), utc(2025, 10, 29))
    assert event == RemoteEvent(
        uid="booking-42@cortex",
        start=utc(2025, 10, 28, 14),
        end=utc(2025, 10, 28, 14, 45),
        summary=summary,
        status="confirmed",
        transparent=False,
        all_day=False,
        recurrence_id="",
    )


def test_event_ics_cannot_be_injected_into() -> None:
    ics = event_ics(
        "uid-1\r\nX-EVIL:1",
        utc(2025, 10, 28, 14),
        utc(2025, 10, 28, 15),
        "Hi\r\nATTENDEE:mailto:evil@example.com",
        attendee_email="guest@example.com\r\nATTENDEE:mailto:evil@example.com",
    )
    lines = unfolded_lines(ics)
    assert [line for line in lines if line.startswith("ATTENDEE")] == [
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;RSVP=TRUE:"
        "mailto:guest@example.comATTENDEE:mailto:evil@example.com"
    ]
    assert not any(line.startswith("X-EVIL") for line in lines)
    [event] = expand_ics(ics, utc(2025, 10, 28), utc(2025, 10, 29))
    assert event.summary == "Hi\nATTENDEE:mailto:evil@example.com"  # text, one property
    assert event.uid == "uid-1X-EVIL:1"


def test_event_ics_optional_parts_and_validation() -> None:
    ics = event_ics("u", utc(2025, 10, 28, 14), utc(2025, 10, 28, 15), "Call")
    lines = unfolded_lines(ics)
    assert not any(line.startswith(("ATTENDEE", "ORGANIZER", "DESCRIPTION")) for line in lines)
    assert "ATTENDEE" not in event_ics(
        "u", utc(2025, 10, 28, 14), utc(2025, 10, 28, 15), "Call", attendee_email=" \r\n"
    )
    with pytest.raises(ValueError, match="after start"):
        event_ics("u", utc(2025, 10, 28, 15), utc(2025, 10, 28, 15), "Call")
    with pytest.raises(ValueError, match="timezone-aware"):
        event_ics("u", datetime(2025, 10, 28, 15), utc(2025, 10, 28, 16), "Call")


# --- moving an event in place ---------------------------------------------------------


def test_moved_ics_moves_in_place_and_bumps_the_sequence() -> None:
    ics = event_ics(
        "bk_1", utc(2030, 1, 7, 9), utc(2030, 1, 7, 10), "Call", "About it", "eve@example.com"
    )
    moved = moved_ics(ics, "bk_1", utc(2030, 1, 8, 14), utc(2030, 1, 8, 15))
    assert moved is not None
    [event] = expand_ics(moved, utc(2030, 1, 1), utc(2030, 2, 1))
    assert (event.uid, event.start, event.end, event.summary) == (
        "bk_1",
        utc(2030, 1, 8, 14),
        utc(2030, 1, 8, 15),
        "Call",
    )
    assert "SEQUENCE:1" in moved and "DESCRIPTION:About it" in moved
    assert "mailto:eve@example.com" in moved.replace("\r\n ", "")
    # where it is already, with the same texts: nothing to write
    assert moved_ics(moved, "bk_1", utc(2030, 1, 8, 14), utc(2030, 1, 8, 15)) is None
    assert moved_ics(moved, "bk_1", utc(2030, 1, 8, 14), utc(2030, 1, 8, 15), "Call") is None
    # new texts replace the event's (an empty description removes it)
    again = moved_ics(moved, "bk_1", utc(2030, 1, 8, 14), utc(2030, 1, 8, 15), "Chat", "")
    assert again is not None and "SEQUENCE:2" in again
    assert "SUMMARY:Chat" in again and "DESCRIPTION" not in again


def test_moved_ics_reads_zoned_times_and_durations() -> None:
    ics = calendar(
        """
        UID:zoned
        DTSTAMP:20300101T000000Z
        DTSTART;TZID=Europe/Berlin:20300107T100000
        DURATION:PT30M
        SEQUENCE:4
        SUMMARY:Zoned
        """
    )
    start = datetime(2030, 1, 7, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    assert moved_ics(ics, "zoned", start, start + timedelta(minutes=30)) is None
    moved = moved_ics(ics, "zoned", start + timedelta(hours=1), start + timedelta(hours=2))
    assert moved is not None and "DURATION" not in moved and "SEQUENCE:5" in moved
    [event] = expand_ics(moved, utc(2030, 1, 1), utc(2030, 2, 1))
    assert (event.start, event.end) == (utc(2030, 1, 7, 10), utc(2030, 1, 7, 11))


def test_moved_ics_refuses_what_it_cannot_move() -> None:
    ics = event_ics("bk_1", utc(2030, 1, 7, 9), utc(2030, 1, 7, 10), "Call")
    with pytest.raises(IcalError):
        moved_ics(ics, "bk_other", utc(2030, 1, 7, 11), utc(2030, 1, 7, 12))
    with pytest.raises(ValueError, match="after start"):
        moved_ics(ics, "bk_1", utc(2030, 1, 7, 12), utc(2030, 1, 7, 11))
    with pytest.raises(ValueError, match="timezone-aware"):
        moved_ics(ics, "bk_1", datetime(2030, 1, 7, 11), utc(2030, 1, 7, 12))
