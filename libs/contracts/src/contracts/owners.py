"""Messages of the booking service about its projection of owners (read-your-writes).

Booking keeps a projection of each owner's settings (from identity's events) and caches the
owner's free/busy answers (dropped on calendars' events). Events arrive milliseconds after the
change they announce; a door that answered a change must not let the next read see the state
before it. So after identity or calendars commit an owner's change, the gateway hands the
result to booking with these commands before it answers: booking applies it (in version
order, the same rule as for the events, which then find nothing newer to apply).
"""

from __future__ import annotations

from typing import Final

from contracts import subjects
from contracts.envelope import Message
from contracts.identity import ApplyOwnerSettings, OwnerSettingsApplied
from contracts.rpc import Rpc

BOOKING = subjects.BOOKING


class OwnerCalendarsChanged(Message):
    """The envelope's tenant's calendars changed (connected, disconnected, chosen)."""


class OwnerCalendarsVersion(Message):
    calendars_version: int


APPLY_OWNER_SETTINGS: Final[Rpc[ApplyOwnerSettings, OwnerSettingsApplied]] = Rpc(
    subjects.command(BOOKING, "apply_owner_settings"), ApplyOwnerSettings, OwnerSettingsApplied,
    "Apply an owner's settings identity just committed, before the change is answered",
)  # fmt: skip
OWNER_CALENDARS_CHANGED: Final[Rpc[OwnerCalendarsChanged, OwnerCalendarsVersion]] = Rpc(
    subjects.command(BOOKING, "owner_calendars_changed"), OwnerCalendarsChanged,
    OwnerCalendarsVersion,
    "Stop serving free/busy answers cached before an owner's calendar change",
)  # fmt: skip

RPCS: Final = (APPLY_OWNER_SETTINGS, OWNER_CALENDARS_CHANGED)
