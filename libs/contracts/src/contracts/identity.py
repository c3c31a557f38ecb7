"""Messages of the identity service: tenants, API keys, settings, resolution, activity."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import formats, subjects
from contracts.envelope import Message
from contracts.formats import TimeOfDayOrEnd
from contracts.rpc import EventSpec, Rpc

IDENTITY = subjects.IDENTITY


class UserType(StrEnum):
    INDIVIDUAL = "individual"
    DEVELOPER = "developer"


API_KEY_PATTERN: Final = r"^sk_live_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$"
"""``sk_live_<12-character public prefix>_<43 base64url characters = 256 bits of secret>``."""

# the weekdays and the time of day are owned by contracts.formats (named here too)
Weekday = formats.Weekday
WEEKDAYS: Final = formats.WEEKDAYS
_HHMM = formats.TIME_OF_DAY_OR_END_PATTERN


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkingInterval(Value):
    """Local wall-clock times; ``end`` <= ``start`` means the interval crosses midnight."""

    start: TimeOfDayOrEnd = Field(examples=["09:00"])
    end: TimeOfDayOrEnd = Field(examples=["17:00"])


WorkingHours = dict[Weekday, list[WorkingInterval]]


class BookingRules(Value):
    max_advance_days: int = Field(default=60, ge=1, le=365)
    min_notice_hours: int = Field(default=2, ge=0, le=720)
    confirm_before_booking: bool = False
    buffer_minutes: int = Field(default=0, ge=0, le=240)
    default_duration_minutes: int = Field(default=30, ge=5, le=720)


class BookingRulesPatch(Value):
    """Some booking rules; the ones left out keep their current values."""

    max_advance_days: int | None = Field(default=None, ge=1, le=365)
    min_notice_hours: int | None = Field(default=None, ge=0, le=720)
    confirm_before_booking: bool | None = None
    buffer_minutes: int | None = Field(default=None, ge=0, le=240)
    default_duration_minutes: int | None = Field(default=None, ge=5, le=720)


class TenantSettings(Value):
    tenant_id: str
    email: str
    display_name: str
    slug: str | None
    open_scheduling: bool
    user_type: UserType
    timezone: str
    working_hours: WorkingHours
    booking_rules: BookingRules
    updated_at: datetime
    # bumped by identity on every change of the tenant (settings, deletion): a projection
    # applies an event only when its version is newer than the one it holds
    version: int = 0


class ApiKeyInfo(Value):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class ActivityItem(Value):
    id: str
    type: str
    summary: str
    occurred_at: datetime
    ids: dict[str, str]


# --- requests and replies ------------------------------------------------------------


class ProvisionTenant(Message):
    """Create a tenant (idempotent by ``external_id`` when given), optionally with a first key."""

    email: str = Field(max_length=320)
    display_name: str = Field(default="", max_length=200)
    external_id: str | None = Field(default=None, max_length=200)
    user_type: UserType = UserType.INDIVIDUAL
    slug: str | None = None
    first_key_name: str | None = Field(default=None, max_length=100)


class TenantProvisioned(Message):
    created: bool
    settings: TenantSettings
    key: str | None = Field(default=None, description="The first API key, shown only here.")


class ReceiveClerkWebhook(Message):
    """A Clerk (Svix) webhook exactly as received: identity verifies it."""

    payload: str = Field(max_length=1_000_000)
    svix_id: str = Field(max_length=200)
    svix_timestamp: str = Field(max_length=40)
    svix_signature: str = Field(max_length=2000)


class ClerkWebhookHandled(Message):
    status: Literal["processed", "duplicate", "ignored"]
    event_type: str
    affected_tenant_id: str | None = None


class VerifyApiKey(Message):
    key: str = Field(max_length=200)


class ApiKeyVerified(Message):
    key_id: str
    verified_tenant_id: str


class CreateApiKey(Message):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyCreated(Message):
    api_key: ApiKeyInfo
    key: str = Field(description="The full key, shown only in this reply.")


class ListApiKeys(Message):
    pass


class ApiKeyList(Message):
    keys: list[ApiKeyInfo]


class RevokeApiKey(Message):
    key_id: str = Field(max_length=100)


class ApiKeyRevokedReply(Message):
    key_id: str


class RecordKeyUsage(Message):
    """Last-used times the gateways gathered in memory, flushed in batches."""

    last_used: dict[str, datetime] = Field(max_length=10_000)


class UsageRecorded(Message):
    updated: int


class GetSettings(Message):
    pass


class SettingsReply(Message):
    settings: TenantSettings


class UpdateSettings(Message):
    """Change some settings; fields left out are kept. Identity validates every value."""

    slug: str | None = Field(default=None, max_length=200)
    open_scheduling: bool | None = None
    booking_rules: BookingRulesPatch | None = None
    user_type: str | None = Field(default=None, max_length=40)
    timezone: str | None = Field(default=None, max_length=100)
    working_hours: dict[str, list[WorkingInterval]] | None = None
    display_name: str | None = Field(default=None, max_length=400)


class ResolveIdentity(Message):
    identity: str = Field(max_length=320)


class IdentityResolved(Message):
    identity: str
    slug: str
    display_name: str


class ListActivity(Message):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class ActivityPage(Message):
    items: list[ActivityItem]
    next_cursor: str | None


# --- events -------------------------------------------------------------------------


class TenantCreated(Message):
    settings: TenantSettings


class TenantDeleted(Message):
    deleted_tenant_id: str
    # the tenant's settings version the deletion made (newer than every settings event)
    settings_version: int = 0


class SettingsChanged(Message):
    """The whole settings after a change, so projections can replace what they hold."""

    settings: TenantSettings
    changed: list[str]


class ApplyOwnerSettings(Message):
    """Settings identity just committed (with their version), handed by the gateway to a
    service that keeps a projection of them before it answers the change (read-your-writes).
    The projection applies them as it would the settings event: an older version changes
    nothing."""

    settings: TenantSettings


class OwnerSettingsApplied(Message):
    settings_version: int = Field(
        description="The version the projection holds now (>= the one sent)"
    )


class ApiKeyCreatedEvent(Message):
    key_id: str
    name: str
    prefix: str


class ApiKeyRevoked(Message):
    key_id: str
    prefix: str


PROVISION_TENANT: Final = Rpc(
    subjects.command(IDENTITY, "provision_tenant"), ProvisionTenant, TenantProvisioned,
    "Create a tenant (or return the existing one) and optionally its first API key",
)  # fmt: skip
RECEIVE_CLERK_WEBHOOK: Final = Rpc(
    subjects.command(IDENTITY, "receive_clerk_webhook"), ReceiveClerkWebhook, ClerkWebhookHandled,
    "Verify and apply a Clerk webhook (user.created, user.updated, user.deleted)",
)  # fmt: skip
VERIFY_API_KEY: Final = Rpc(
    subjects.command(IDENTITY, "verify_api_key"), VerifyApiKey, ApiKeyVerified,
    "Which tenant an API key belongs to; unauthorized when unknown or revoked",
)  # fmt: skip
CREATE_API_KEY: Final = Rpc(
    subjects.command(IDENTITY, "create_api_key"), CreateApiKey, ApiKeyCreated,
    "Create an API key; the full key is in this reply only",
)  # fmt: skip
LIST_API_KEYS: Final = Rpc(
    subjects.command(IDENTITY, "list_api_keys"), ListApiKeys, ApiKeyList, "The tenant's live keys"
)
REVOKE_API_KEY: Final = Rpc(
    subjects.command(IDENTITY, "revoke_api_key"), RevokeApiKey, ApiKeyRevokedReply,
    "Revoke a key; every gateway stops accepting it",
)  # fmt: skip
RECORD_KEY_USAGE: Final = Rpc(
    subjects.command(IDENTITY, "record_key_usage"), RecordKeyUsage, UsageRecorded,
    "Store the last-used times the gateways batched",
)  # fmt: skip
GET_SETTINGS: Final = Rpc(
    subjects.command(IDENTITY, "get_settings"), GetSettings, SettingsReply, "The tenant's settings"
)
UPDATE_SETTINGS: Final = Rpc(
    subjects.command(IDENTITY, "update_settings"), UpdateSettings, SettingsReply,
    "Validate and apply a settings change",
)  # fmt: skip
RESOLVE_IDENTITY: Final = Rpc(
    subjects.command(IDENTITY, "resolve_identity"), ResolveIdentity, IdentityResolved,
    "The public scheduling page of an e-mail, when its owner has Open Scheduling on",
)  # fmt: skip
LIST_ACTIVITY: Final = Rpc(
    subjects.command(IDENTITY, "list_activity"), ListActivity, ActivityPage,
    "The tenant's recent activity, newest first",
)  # fmt: skip

TENANT_CREATED: Final = EventSpec(
    subjects.event(IDENTITY, "tenant_created"), TenantCreated, "a tenant was created"
)
TENANT_DELETED: Final = EventSpec(
    subjects.event(IDENTITY, "tenant_deleted"), TenantDeleted, "a tenant was deleted"
)
SETTINGS_CHANGED: Final = EventSpec(
    subjects.event(IDENTITY, "settings_changed"), SettingsChanged, "a tenant's settings changed"
)
API_KEY_CREATED: Final = EventSpec(
    subjects.event(IDENTITY, "api_key_created"), ApiKeyCreatedEvent, "an API key was created"
)
API_KEY_REVOKED: Final = EventSpec(
    subjects.event(IDENTITY, "api_key_revoked"), ApiKeyRevoked, "an API key was revoked"
)

RPCS: Final = (
    PROVISION_TENANT, RECEIVE_CLERK_WEBHOOK, VERIFY_API_KEY, CREATE_API_KEY, LIST_API_KEYS,
    REVOKE_API_KEY, RECORD_KEY_USAGE, GET_SETTINGS, UPDATE_SETTINGS, RESOLVE_IDENTITY,
    LIST_ACTIVITY,
)  # fmt: skip
EVENTS: Final = (TENANT_CREATED, TENANT_DELETED, SETTINGS_CHANGED, API_KEY_CREATED, API_KEY_REVOKED)
