"""The facts several services check, owned once in ``contracts.formats``: e-mail addresses,
times of day, weekdays; and the pure rules the services' domain code reads from contracts."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from contracts import formats, identity, text, walltime
from contracts.formats import (
    EMAIL_MAX,
    TIME_OF_DAY_OR_END_PATTERN,
    TIME_OF_DAY_PATTERN,
    WEEKDAYS,
    EmailAddress,
    InvalidEmail,
    InvalidTimeOfDay,
    InvalidValue,
    email_domain,
    format_hhmm,
    normalise_email,
    parse_email,
    parse_hhmm,
)
from contracts.policies import ConditionType

# --- e-mail addresses --------------------------------------------------------------------


def refused(value: str) -> InvalidEmail:
    with pytest.raises(InvalidEmail) as caught:
        parse_email(value)
    return caught.value


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("ada@example.com", "ada@example.com"),
        (" Ada@Example.com ", "Ada@Example.com"),  # case kept, spaces around stripped
        ("\tAda@Example.com\r\n", "Ada@Example.com"),
        (" Alice@Example.com\u200b ", "Alice@Example.com"),  # zero-width space dropped
        ("ali\u200bce@exam\u200dple.com", "alice@example.com"),  # anywhere
        ("\ufeffbob@example.org\u202e", "bob@example.org"),  # BOM, bidi override
        ("o'brien+tag@sub.example.co.uk", "o'brien+tag@sub.example.co.uk"),
        ("jürgen@bücher.de", "jürgen@bücher.de"),  # both services took Unicode
        ("x@y.com", "x@y.com"),
    ],
)
def test_addresses_are_parsed(value: str, address: str) -> None:
    assert parse_email(value) == address


@pytest.mark.parametrize(
    "value",
    [
        "", "   ", "\u200b", "ada", "ada@", "@example.com", "ada@example", "ada@example.",
        "a da@example.com", "a@b@c.d", "ada@exa mple.com", "ada@.com",
        "x\x00@example.org",  # NUL: refused, never dropped (booking's e2e pins a 400)
        "eve\x07@example.com",  # bell
        "a\tb@example.com", "a\nb@example.com",
        "guest@example.com\r\nATTENDEE:mailto:evil@example.com",  # header injection
        "ada@example.com\x1b[31m",  # escape sequence
        "ada\ue000@example.com",  # private use
        "x" * 65 + "@example.com",  # local part over 64
        "x" * 310 + "@example.com",  # over 320 in all
    ],
)  # fmt: skip
def test_what_is_no_address_is_refused(value: str) -> None:
    error = refused(value)
    assert isinstance(error, InvalidValue) and isinstance(error, ValueError)
    assert error.code == "invalid_email"
    assert str(error).endswith("' is not an e-mail address.")


def test_the_length_limit_is_320_characters_once_cleaned() -> None:
    longest = "l" * 64 + "@" + "d" * 191 + "." + "c" * 63
    assert len(longest) == EMAIL_MAX
    assert parse_email(longest) == longest
    assert parse_email("\u200b" * 50 + longest + " ") == longest  # dropped before counting
    refused("l" + longest)
    refused("l" * 64 + "@" + "d" * 192 + "." + "c" * 63)


def test_the_refusal_quotes_the_value_cleaned() -> None:
    assert str(refused("a\x00b\u200bc")) == "'abc' is not an e-mail address."
    assert len(str(refused("y" * 400))) < 100


def test_normalised_addresses_compare_case_insensitively() -> None:
    assert normalise_email("  Ada@Example.COM ") == "ada@example.com"
    assert normalise_email(" Ali\u200bce@Example.com ") == "alice@example.com"
    # no validation: text that is no address stays unlike every address
    assert normalise_email("Eve\x07@Example.com") == "eve\x07@example.com"
    assert normalise_email("not an address") == "not an address"


def test_email_domain() -> None:
    assert email_domain("ada@Example.COM") == "example.com"
    assert email_domain("ada@example.com.") == "example.com"
    assert email_domain("no-at-sign") == "no-at-sign"


@given(st.emails().filter(lambda e: len(e) <= EMAIL_MAX))
def test_every_address_hypothesis_makes_is_accepted(address: str) -> None:
    assert parse_email(address) == address


@given(st.text(max_size=40) | st.emails().map(lambda e: f" {e.upper()}\u200b"))
@example("Ada@Example.com")
def test_normalising_agrees_with_parsing(value: str) -> None:
    """For any text that is an address, its normalised form is the parsed address in lower
    case: a lookup by the raw text finds what was stored parsed."""
    try:
        address = parse_email(value)
    except InvalidEmail:
        return
    assert normalise_email(value) == address.lower() == normalise_email(address)


class Contact(BaseModel):
    email: EmailAddress = Field(examples=["alice@example.com"])
    other: EmailAddress | None = None


def test_the_pydantic_type_parses_and_states_format_email() -> None:
    assert Contact(email=" Alice@Example.com\u200b ").email == "Alice@Example.com"
    with pytest.raises(ValidationError) as caught:
        Contact(email="x\x00@example.org")
    assert "is not an e-mail address" in str(caught.value)
    with pytest.raises(ValidationError):
        Contact(email="a" * 321)
    schema = Contact.model_json_schema()["properties"]["email"]
    assert schema == {
        "type": "string",
        "format": "email",
        "maxLength": EMAIL_MAX,
        "examples": ["alice@example.com"],
        "title": "Email",
    }


# --- times of day ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "minutes"), [("00:00", 0), ("09:00", 540), ("12:30", 750), ("23:59", 1439)]
)
def test_times_of_day(value: str, minutes: int) -> None:
    assert parse_hhmm(value) == minutes
    assert parse_hhmm(value, allow_24=True) == minutes
    assert parse_hhmm(value, one_digit_hour=True) == minutes
    assert format_hhmm(minutes) == value


def test_24_00_is_the_end_of_the_day_when_allowed() -> None:
    assert parse_hhmm("24:00", allow_24=True) == 1440 == formats.MINUTES_PER_DAY
    assert format_hhmm(1440) == "24:00"
    with pytest.raises(InvalidTimeOfDay) as caught:
        parse_hhmm("24:00")
    assert caught.value.code == "invalid_time_of_day"
    assert str(caught.value) == "'24:00' is not a time of day HH:MM (00:00 to 23:59)."


def test_one_digit_hours_are_booking_policies_variant() -> None:
    assert parse_hhmm("9:00", one_digit_hour=True) == 540
    assert parse_hhmm("0:05", one_digit_hour=True, allow_24=True) == 5
    with pytest.raises(InvalidTimeOfDay):
        parse_hhmm("9:00")  # availability and working hours refuse it
    with pytest.raises(InvalidTimeOfDay):
        parse_hhmm("9:00", allow_24=True)


@pytest.mark.parametrize(
    "value",
    ["", "9", "0900", "25:00", "24:01", "24:30", "09:60", "9:5", "09:00:00", " 09:00",
     "17:00\n", "\u0660\u0669:\u0660\u0660", "-1:00", "24:00 "],
)  # fmt: skip
def test_what_is_no_time_of_day_is_refused(value: str) -> None:
    for allow_24 in (False, True):
        with pytest.raises(InvalidTimeOfDay):
            parse_hhmm(value, allow_24=allow_24, one_digit_hour=True)


def test_a_value_that_is_no_text_is_refused() -> None:
    with pytest.raises(InvalidTimeOfDay):
        parse_hhmm(900)  # type: ignore[arg-type]


@pytest.mark.parametrize("minutes", [-1, 1441, True])
def test_format_hhmm_refuses_what_is_no_minute_of_a_day(minutes: int) -> None:
    with pytest.raises(ValueError):
        format_hhmm(minutes)


def _matches(pattern: str, value: str) -> bool:
    return re.search(pattern.replace("$", r"\Z"), value) is not None


@given(st.text(alphabet="0123456789: \n", max_size=7))
@example("24:00")
@example("9:00")
def test_the_patterns_say_what_the_parser_accepts(value: str) -> None:
    def parses(**options: bool) -> bool:
        try:
            parse_hhmm(value, **options)
        except InvalidTimeOfDay:
            return False
        return True

    assert _matches(TIME_OF_DAY_PATTERN, value) == parses()
    assert _matches(TIME_OF_DAY_OR_END_PATTERN, value) == parses(allow_24=True)
    assert _matches(rf"^{formats.HHMM}$", value) == parses()


def test_the_patterns_messages_state_are_unchanged() -> None:
    """The working hours' pattern is in every snapshot and OpenAPI document: its text stays."""
    assert TIME_OF_DAY_OR_END_PATTERN == r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
    outside = formats.CONDITION_VALUE_PATTERNS[ConditionType.OUTSIDE_HOURS]
    assert outside == rf"^{formats.HHMM}-(?:{formats.HHMM}|24:00)$"
    assert formats.HHMM == r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"


def test_working_intervals_use_the_type() -> None:
    assert identity.WorkingInterval(start="00:00", end="24:00").end == "24:00"
    for bad in ("9:00", "25:00", "24:30", "09:00\n"):
        with pytest.raises(ValidationError):
            identity.WorkingInterval(start=bad, end="17:00")


# --- weekdays ----------------------------------------------------------------------------------


def test_one_weekdays_tuple() -> None:
    assert identity.WEEKDAYS is WEEKDAYS
    assert WEEKDAYS == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    assert WEEKDAYS[date(2026, 1, 5).weekday()] == "mon"  # a Monday
    weekday = formats.CONDITION_VALUE_PATTERNS[ConditionType.WEEKDAY]
    assert weekday == "^(?:mon|tue|wed|thu|fri|sat|sun)(?:,(?:mon|tue|wed|thu|fri|sat|sun))*$"


# --- the pure rules the runtime names too ------------------------------------------------------


def test_the_runtime_names_the_same_rules() -> None:
    from cortex_runtime import text as runtime_text
    from cortex_runtime import walltime as runtime_walltime

    assert runtime_text.clean_text is text.clean_text
    assert runtime_walltime.local_instant is walltime.local_instant
    assert runtime_walltime.local_wall is walltime.local_wall
    assert runtime_walltime.wall_status is walltime.wall_status
    assert text.clean_text("Al\u200bice\x07  \n Smith", 200) == "Alice Smith"
    assert text.shown("x" * 100) == "x" * 60
