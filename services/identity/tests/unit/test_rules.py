"""Identity's pure rules: slugs, time zones, working hours, text cleaning."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from contracts import formats
from contracts.identity import WEEKDAYS, UserType, WorkingInterval
from identity.domain import rules
from identity.domain.rules import RuleViolation

SLUG_FORMAT = (
    "A slug is 3 to 63 characters of lowercase letters, digits and single hyphens, "
    "starting and ending with a letter or digit."
)


def violation(fn, *args) -> RuleViolation:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation) as caught:
        fn(*args)
    return caught.value


# --- slugs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_slug", "kept"),
    [
        ("abc", "abc"),
        ("a1b", "a1b"),
        ("my-scheduling-page", "my-scheduling-page"),
        ("0-9", "0-9"),
        ("  padded-slug \n", "padded-slug"),
        ("a" * 63, "a" * 63),
        ("a" + "-b" * 31, "a" + "-b" * 31),
    ],
)
def test_check_slug_accepts_and_strips(given_slug: str, kept: str) -> None:
    assert rules.check_slug(given_slug) == kept


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ab",  # too short
        "a" * 64,  # too long
        "Abc",  # uppercase
        "ABC-DEF",
        "-abc",  # leading hyphen
        "abc-",  # trailing hyphen
        "ab--cd",  # double hyphen
        "ab_cd",
        "ab.cd",
        "ab cd",
        "ab/cd",
        "caf\u00e9",  # non-ASCII letter
        "abc\u200b",  # zero-width space
        "ab\ncd",
    ],
)
def test_check_slug_refuses_bad_format(bad: str) -> None:
    refused = violation(rules.check_slug, bad)
    assert refused.code == "invalid_slug"
    assert str(refused) == SLUG_FORMAT


@pytest.mark.parametrize("word", ["api", "admin", "public", "resolve", "webhooks", "book"])
def test_check_slug_refuses_reserved_words(word: str) -> None:
    refused = violation(rules.check_slug, word)
    assert refused.code == "reserved_slug"
    assert str(refused) == f"The slug '{word}' is reserved."
    assert violation(rules.check_slug, f" {word} ").code == "reserved_slug"


_words = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
    min_size=1,
    max_size=8,
)


@given(_words.map("-".join).filter(lambda s: 3 <= len(s) <= 63))
def test_any_well_formed_unreserved_slug_is_kept(slug: str) -> None:
    if slug in rules.RESERVED_SLUGS:
        assert violation(rules.check_slug, slug).code == "reserved_slug"
    else:
        assert rules.check_slug(slug) == slug


@given(_words.map("-".join).filter(lambda s: len(s) >= 3), st.sampled_from(["-", "_", "A", "."]))
def test_a_slug_with_a_bad_character_or_edge_hyphen_is_refused(slug: str, bad: str) -> None:
    assert violation(rules.check_slug, bad + slug).code == "invalid_slug"
    assert violation(rules.check_slug, slug + bad).code == "invalid_slug"


# --- time zones -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "kept"),
    [
        ("UTC", "UTC"),
        ("America/New_York", "America/New_York"),
        ("Europe/Berlin", "Europe/Berlin"),
        ("Asia/Kolkata", "Asia/Kolkata"),
        (" Pacific/Auckland ", "Pacific/Auckland"),
    ],
)
def test_check_timezone_accepts_iana_names(zone: str, kept: str) -> None:
    assert rules.check_timezone(zone) == kept


@pytest.mark.parametrize(
    "bad",
    [
        "Not/AZone",
        "",
        "america/new_york",
        "EST5EDT/Nope",
        "../../etc/passwd",
        "+05:00",
        "Mars/Base",
    ],
)
def test_check_timezone_refuses_unknown_names(bad: str) -> None:
    refused = violation(rules.check_timezone, bad)
    assert refused.code == "invalid_timezone"
    assert str(refused) == f"'{rules.clean_text(bad, 60)}' is not an IANA time zone."


def test_check_timezone_message_is_cleaned() -> None:
    refused = violation(rules.check_timezone, "Bad\x07Zone\u200b")
    assert str(refused) == "'BadZone' is not an IANA time zone."


# --- user type and e-mail ----------------------------------------------------------


def test_check_user_type() -> None:
    assert rules.check_user_type("individual") is UserType.INDIVIDUAL
    assert rules.check_user_type("developer") is UserType.DEVELOPER
    for bad in ("admin", "Developer", "", "root"):
        refused = violation(rules.check_user_type, bad)
        assert refused.code == "invalid_user_type"
        assert str(refused) == "user_type must be 'individual' or 'developer'."


def test_the_shared_email_rule_keeps_what_identity_accepted_and_refused() -> None:
    """Identity reads addresses with contracts.formats (its own copy is gone)."""
    assert formats.parse_email(" Ada@Example.com ") == "Ada@Example.com"
    for bad in ("", "ada", "ada@", "@example.com", "ada@example", "a da@example.com", "a@b@c.d"):
        with pytest.raises(formats.InvalidEmail) as refused:
            formats.parse_email(bad)
        assert refused.value.code == "invalid_email"
    assert formats.normalise_email("  Ada@Example.COM ") == "ada@example.com"
    assert formats.email_domain("ada@Example.COM") == "example.com"


def test_a_new_tenant_is_named_after_its_address_when_no_name_is_given() -> None:
    assert rules.first_display_name(" Ada\x07 Lovelace ", "ada@example.com") == "Ada Lovelace"
    assert rules.first_display_name("\u200b ", "ada.l@example.com") == "ada.l"
    assert rules.clean_display_name("x" * 300) == "x" * rules.MAX_DISPLAY_NAME


def test_check_display_name() -> None:
    assert rules.check_display_name("  Ada \u200b Lovelace ") == "Ada Lovelace"
    assert rules.check_display_name("a" * 300) == "a" * rules.MAX_DISPLAY_NAME
    for bad in ("", "   ", "\u200b\x07"):
        refused = violation(rules.check_display_name, bad)
        assert refused.code == "invalid_display_name"
        assert str(refused) == "display_name cannot be empty."


# --- working hours ------------------------------------------------------------------


def iv(start: str, end: str) -> WorkingInterval:
    return WorkingInterval(start=start, end=end)


def hours(**days: list[tuple[str, str]]) -> dict[str, list[WorkingInterval]]:
    return {day: [iv(s, e) for s, e in spans] for day, spans in days.items()}


@pytest.mark.parametrize(
    "week",
    [
        {},
        hours(mon=[("09:00", "17:00")]),
        hours(mon=[("09:00", "12:00"), ("13:00", "17:00")]),
        hours(mon=[("09:00", "12:00"), ("12:00", "17:00")]),  # touching is fine
        hours(fri=[("22:00", "02:00")]),  # crosses midnight
        hours(fri=[("22:00", "02:00")], sat=[("02:00", "06:00")]),  # touches after midnight
        hours(sun=[("22:00", "02:00")], mon=[("02:00", "10:00")]),  # wraps the week, touches
        hours(sun=[("22:00", "06:00")]),  # wraps the week alone
        hours(mon=[("00:00", "24:00")], tue=[("00:00", "24:00")]),
        hours(mon=[("18:00", "24:00")], tue=[("00:00", "01:00")]),
        hours(**{day: [("09:00", "17:00")] for day in WEEKDAYS}),
        hours(**{day: [("20:00", "08:00")] for day in WEEKDAYS}),  # every night, no overlap
    ],
)
def test_check_working_hours_accepts(week: dict[str, list[WorkingInterval]]) -> None:
    checked = rules.check_working_hours(week)
    assert checked == {day: week[day] for day in WEEKDAYS if week.get(day)}
    assert list(checked) == [day for day in WEEKDAYS if day in checked]  # mon..sun order


def test_check_working_hours_drops_empty_days() -> None:
    assert rules.check_working_hours({"mon": [], "tue": [iv("09:00", "10:00")]}) == {
        "tue": [iv("09:00", "10:00")]
    }


@pytest.mark.parametrize(
    ("week", "message"),
    [
        (
            hours(mon=[("09:00", "12:00"), ("11:00", "13:00")]),
            "mon 09:00-12:00 overlaps mon 11:00-13:00.",
        ),
        (
            hours(mon=[("13:00", "17:00"), ("09:00", "14:00")]),  # given out of order
            "mon 09:00-14:00 overlaps mon 13:00-17:00.",
        ),
        (
            hours(mon=[("09:00", "17:00"), ("10:00", "11:00")]),  # one inside the other
            "mon 09:00-17:00 overlaps mon 10:00-11:00.",
        ),
        (
            hours(fri=[("22:00", "02:00")], sat=[("01:00", "05:00")]),  # across midnight
            "fri 22:00-02:00 overlaps sat 01:00-05:00.",
        ),
        (
            hours(mon=[("22:00", "02:00"), ("23:00", "23:30")]),
            "mon 22:00-02:00 overlaps mon 23:00-23:30.",
        ),
        (
            hours(sun=[("22:00", "02:00")], mon=[("01:00", "09:00")]),  # Sunday -> Monday wrap
            "sun 22:00-02:00 overlaps mon 01:00-09:00.",
        ),
        (
            hours(sun=[("20:00", "08:00")], mon=[("00:00", "00:30")]),
            "sun 20:00-08:00 overlaps mon 00:00-00:30.",
        ),
        (
            hours(
                mon=[("00:00", "01:00")], wed=[("09:00", "10:00")], sun=[("23:00", "00:30")]
            ),  # wraps onto the first interval of the week only
            "sun 23:00-00:30 overlaps mon 00:00-01:00.",
        ),
    ],
)
def test_check_working_hours_refuses_overlaps(
    week: dict[str, list[WorkingInterval]], message: str
) -> None:
    refused = violation(rules.check_working_hours, week)
    assert refused.code == "invalid_working_hours"
    assert str(refused) == message


def test_check_working_hours_refuses_empty_and_bad_values() -> None:
    empty = violation(rules.check_working_hours, hours(tue=[("10:00", "10:00")]))
    assert (empty.code, str(empty)) == ("invalid_working_hours", "tue: 10:00-10:00 is empty.")
    late = violation(rules.check_working_hours, hours(wed=[("24:00", "01:00")]))
    assert (late.code, str(late)) == ("invalid_working_hours", "wed: a start cannot be 24:00.")
    unknown = violation(rules.check_working_hours, {"monday": [iv("09:00", "10:00")]})
    assert unknown.code == "invalid_working_hours"
    assert str(unknown) == "Unknown weekday 'monday': use mon, tue, wed, thu, fri, sat, sun."


WEEK_MINUTES = 7 * 24 * 60


def _covered(day: str, interval: WorkingInterval) -> set[int]:
    def minutes(hhmm: str) -> int:
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)

    start, end = minutes(interval.start), minutes(interval.end)
    length = end - start if end > start else end + 24 * 60 - start
    begin = WEEKDAYS.index(day) * 24 * 60 + start  # type: ignore[arg-type]
    return {(begin + i) % WEEK_MINUTES for i in range(length)}


_times = st.builds(
    lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45])
)
_interval = st.tuples(_times, st.one_of(_times, st.just("24:00"))).filter(lambda t: t[0] != t[1])


@given(st.dictionaries(st.sampled_from(WEEKDAYS), st.lists(_interval, max_size=3), max_size=7))
@example({"sun": [("22:00", "02:00")], "mon": [("01:00", "09:00")]})
@example({"sun": [("22:00", "02:00")], "mon": [("02:00", "09:00")]})
@example({"sat": [("23:00", "24:00")], "sun": [("00:00", "24:00")], "mon": [("00:00", "01:00")]})
def test_check_working_hours_refuses_exactly_the_overlapping_weeks(
    raw: dict[str, list[tuple[str, str]]],
) -> None:
    """An oracle that marks every minute of the week: any minute covered twice is an overlap."""
    week = {day: [iv(s, e) for s, e in spans] for day, spans in raw.items()}
    seen: set[int] = set()
    overlapping = False
    for day, intervals in week.items():
        for interval in intervals:
            minutes = _covered(day, interval)
            overlapping = overlapping or bool(seen & minutes)
            seen |= minutes
    if overlapping:
        assert violation(rules.check_working_hours, week).code == "invalid_working_hours"
    else:
        assert rules.check_working_hours(week) == {d: week[d] for d in WEEKDAYS if week.get(d)}


# --- text cleaning -------------------------------------------------------------------

_INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Ada Lovelace", "Ada Lovelace"),
        ("Ada\u200bLovelace", "AdaLovelace"),  # zero-width space
        ("Ada\x07 Lovelace", "Ada Lovelace"),  # bell
        ("\u202eAda\u202c", "Ada"),  # bidi override
        ("\ufeffAda\u200d\u2060", "Ada"),  # BOM, zero-width joiner, word joiner
        ("Ada\x00\x1b[31m", "Ada[31m"),  # NUL and escape
        ("  Ada \t\n Lovelace \r\n", "Ada Lovelace"),
        ("Ada\u2028Lovelace\u2029", "AdaLovelace"),  # line/paragraph separators
        ("Ada\u00a0\u3000Lovelace", "Ada Lovelace"),  # other spaces collapse
        ("\u200b\x07\u200b", ""),
        ("Zoë 李", "Zoë 李"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert rules.clean_text(raw, 200) == clean


def test_clean_text_caps_the_length() -> None:
    assert rules.clean_text("a" * 500, 200) == "a" * 200
    assert rules.clean_text("\u200b" * 10 + "abcdef", 3) == "abc"


@given(st.text(), st.integers(min_value=0, max_value=50))
@example("\u200b\x07 Ada \x1f", 10)
def test_clean_text_never_returns_an_invisible_character(raw: str, limit: int) -> None:
    cleaned = rules.clean_text(raw, limit)
    assert len(cleaned) <= limit
    assert not [ch for ch in cleaned if unicodedata.category(ch) in _INVISIBLE]
    assert "  " not in cleaned
    assert "\t" not in cleaned and "\n" not in cleaned and "\r" not in cleaned


@given(st.text(), st.integers(min_value=1, max_value=50))
@example("ab cd", 3)
def test_clean_text_has_no_edge_whitespace_and_is_idempotent(raw: str, limit: int) -> None:
    cleaned = rules.clean_text(raw, limit)
    assert cleaned == cleaned.strip(), f"clean_text({raw!r}, {limit}) == {cleaned!r}"
    assert rules.clean_text(cleaned, limit) == cleaned
