"""The subject scheme.

* ``<owner>.v1.cmd.<verb_noun>``: commands and queries, request/reply, served by a
  queue group named after the owner so replicas share the load.
* ``<owner>.v1.evt.<noun_past_tense>``: events, stored in one JetStream stream per
  owning service; durable consumers are named ``<consumer>__<event>``.

A breaking change to a message is a new ``v2`` subject, never an edit of ``v1``.
"""

from __future__ import annotations

import re
from typing import Final

IDENTITY: Final = "identity"
BOOKING: Final = "booking"
CALENDARS: Final = "calendars"
BILLING: Final = "billing"
GATEWAY: Final = "gateway"

SERVICES: Final[tuple[str, ...]] = (IDENTITY, BOOKING, CALENDARS, BILLING)
# who publishes events (each into its own stream): the services and the gateway
EVENT_OWNERS: Final[tuple[str, ...]] = (*SERVICES, GATEWAY)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"subject token must be lowercase snake_case: {name!r}")
    return name


def command(owner: str, verb_noun: str, version: int = 1) -> str:
    return f"{_checked(owner)}.v{version}.cmd.{_checked(verb_noun)}"


def event(owner: str, noun_past_tense: str, version: int = 1) -> str:
    return f"{_checked(owner)}.v{version}.evt.{_checked(noun_past_tense)}"


def events_wildcard(owner: str) -> str:
    """Every event subject of one owner, every version: what its stream captures."""
    return f"{_checked(owner)}.*.evt.>"


def stream_name(owner: str) -> str:
    return f"{_checked(owner).upper()}_EVENTS"


def durable_name(consumer: str, event_subject: str) -> str:
    """``<consumer>__<event>``, e.g. ``booking__settings_changed`` (v2 gets a suffix)."""
    _owner, version, kind, name = event_subject.split(".")
    if kind != "evt":
        raise ValueError(f"not an event subject: {event_subject}")
    suffix = "" if version == "v1" else f"_{version}"
    return f"{_checked(consumer)}__{name}{suffix}"


def queue_group(owner: str) -> str:
    return _checked(owner)


# Dead letters: a message that exhausted its deliveries is republished here.
DEAD_LETTER_STREAM: Final = "DEAD_LETTERS"


def dead_letter(consumer: str, durable: str) -> str:
    return f"deadletter.{_checked(consumer)}.{durable}"


DEAD_LETTER_WILDCARD: Final = "deadletter.>"

# --- commands (request/reply) -------------------------------------------------
IDENTITY_PING: Final = command(IDENTITY, "ping")
BOOKING_PING: Final = command(BOOKING, "ping")
CALENDARS_PING: Final = command(CALENDARS, "ping")
BILLING_PING: Final = command(BILLING, "ping")
