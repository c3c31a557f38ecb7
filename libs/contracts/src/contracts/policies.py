"""Messages of the booking service about callers and booking policies.

Callers are the people and agents who book, found by a booking's ``attendee_email``;
policies decide each booking. The tenant is the envelope's ``tenant_id``.
Text fields arrive as plain strings: the booking service validates them, so a bad value
is an ``invalid`` error reply with a precise code rather than a schema failure.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from contracts import subjects
from contracts.envelope import Message
from contracts.rpc import EventSpec, Rpc

BOOKING = subjects.BOOKING

MAX_PRIORITY: Final = 1_000_000
"""Priorities lie in ``-MAX_PRIORITY..MAX_PRIORITY``; higher is evaluated first."""


class TrustLevel(StrEnum):
    TRUSTED = "trusted"
    STANDARD = "standard"  # the level of a caller nobody has described
    RESTRICTED = "restricted"
    BLOCKED = "blocked"  # always denied, whatever the policies say


class ConditionType(StrEnum):
    CALLER_DOMAIN = "caller_domain"  # a domain, or ``internal`` / ``external``
    CALLER_EMAIL = "caller_email"  # one e-mail address
    CALLER_TRUST_LEVEL = "caller_trust_level"  # one trust level
    DURATION_OVER = "duration_over"  # minutes, 1-1440
    WEEKDAY = "weekday"  # comma list of mon..sun, in the owner's zone
    OUTSIDE_HOURS = "outside_hours"  # ``HH:MM-HH:MM`` local to the owner; may cross midnight


class PolicyAction(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_CONFIRMATION = "require_confirmation"


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallerInfo(Value):
    id: str
    email: str
    display_name: str
    trust_level: TrustLevel
    created_at: datetime


class PolicyInfo(Value):
    id: str
    name: str
    condition_type: ConditionType
    condition_value: str
    action: PolicyAction
    priority: int
    enabled: bool
    created_at: datetime


# --- requests and replies ------------------------------------------------------------


class CreateCaller(Message):
    email: str = Field(max_length=320)
    display_name: str = Field(default="", max_length=400)
    trust_level: str = Field(default=TrustLevel.STANDARD.value, max_length=40)


class UpsertCaller(Message):
    """The caller with ``email`` (any case) changed, or created when there is none; fields
    left out (``None``) are kept, or take the defaults for a new caller."""

    email: str = Field(max_length=320)
    display_name: str | None = Field(default=None, max_length=400)
    trust_level: str | None = Field(default=None, max_length=40)


class CallerReply(Message):
    caller: CallerInfo


class ListCallers(Message):
    pass


class CallerList(Message):
    callers: list[CallerInfo]


class GetCaller(Message):
    caller_id: str = Field(max_length=100)


class UpdateCaller(Message):
    """Change some of a caller's fields; fields left out (``None``) are kept."""

    caller_id: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=400)
    trust_level: str | None = Field(default=None, max_length=40)


class DeleteCaller(Message):
    caller_id: str = Field(max_length=100)


class CallerDeleted(Message):
    caller_id: str


class CreatePolicy(Message):
    name: str = Field(max_length=400)
    condition_type: str = Field(max_length=60)
    condition_value: str = Field(max_length=400)
    action: str = Field(max_length=60)
    priority: int = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    enabled: bool = True


class PolicyReply(Message):
    policy: PolicyInfo


class ListPolicies(Message):
    pass


class PolicyList(Message):
    """The tenant's policies in evaluation order: priority descending, then oldest first."""

    policies: list[PolicyInfo]


class GetPolicy(Message):
    policy_id: str = Field(max_length=100)


class UpdatePolicy(Message):
    """Change some of a policy's fields; the result is validated as a whole."""

    policy_id: str = Field(max_length=100)
    name: str | None = Field(default=None, max_length=400)
    condition_type: str | None = Field(default=None, max_length=60)
    condition_value: str | None = Field(default=None, max_length=400)
    action: str | None = Field(default=None, max_length=60)
    priority: int | None = Field(default=None, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    enabled: bool | None = None


class DeletePolicy(Message):
    policy_id: str = Field(max_length=100)


class PolicyDeleted(Message):
    policy_id: str


CREATE_CALLER: Final = Rpc(
    subjects.command(BOOKING, "create_caller"), CreateCaller, CallerReply,
    "Describe a caller (e-mail unique per tenant) with a trust level",
)  # fmt: skip
LIST_CALLERS: Final = Rpc(
    subjects.command(BOOKING, "list_callers"), ListCallers, CallerList,
    "The tenant's callers, oldest first",
)  # fmt: skip
GET_CALLER: Final = Rpc(
    subjects.command(BOOKING, "get_caller"), GetCaller, CallerReply, "One caller"
)
UPDATE_CALLER: Final = Rpc(
    subjects.command(BOOKING, "update_caller"), UpdateCaller, CallerReply,
    "Change a caller's e-mail, display name or trust level",
)  # fmt: skip
UPSERT_CALLER: Final = Rpc(
    subjects.command(BOOKING, "upsert_caller"), UpsertCaller, CallerReply,
    "Change the caller with an e-mail address, or describe them when there is none",
)  # fmt: skip
DELETE_CALLER: Final = Rpc(
    subjects.command(BOOKING, "delete_caller"), DeleteCaller, CallerDeleted,
    "Forget a caller; their bookings are then decided as a standard caller's",
)  # fmt: skip
CREATE_POLICY: Final = Rpc(
    subjects.command(BOOKING, "create_policy"), CreatePolicy, PolicyReply,
    "Validate and store a booking policy",
)  # fmt: skip
LIST_POLICIES: Final = Rpc(
    subjects.command(BOOKING, "list_policies"), ListPolicies, PolicyList,
    "The tenant's policies in evaluation order",
)  # fmt: skip
GET_POLICY: Final = Rpc(
    subjects.command(BOOKING, "get_policy"), GetPolicy, PolicyReply, "One policy"
)
UPDATE_POLICY: Final = Rpc(
    subjects.command(BOOKING, "update_policy"), UpdatePolicy, PolicyReply,
    "Change some fields of a policy; the result is validated as a whole",
)  # fmt: skip
DELETE_POLICY: Final = Rpc(
    subjects.command(BOOKING, "delete_policy"), DeletePolicy, PolicyDeleted, "Delete a policy"
)

RPCS: Final = (
    CREATE_CALLER, LIST_CALLERS, GET_CALLER, UPDATE_CALLER, UPSERT_CALLER, DELETE_CALLER,
    CREATE_POLICY, LIST_POLICIES, GET_POLICY, UPDATE_POLICY, DELETE_POLICY,
)  # fmt: skip
EVENTS: Final[tuple[EventSpec[Any], ...]] = ()
