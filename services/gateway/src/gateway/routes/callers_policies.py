"""Caller profiles and booking policies: ``/api/v1/callers`` and ``/api/v1/policies``.

Values are checked by the booking service, so an unknown trust level, condition type,
action or a bad condition value is a 400 with a precise ``code``.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict, JsonValue

from contracts import formats
from contracts import policies as msg
from gateway import capabilities
from gateway.capabilities import CallerList, PolicyList
from gateway.deps import TenantCaller
from gateway.errors import documented
from gateway.params import CallerId, PolicyId, nullable, schema_enum

router = APIRouter()

_ID = 100


def _id(value: str) -> str:
    return value[:_ID]


# --- callers ---------------------------------------------------------------------------------


_EMAIL: JsonDict = {"format": "email"}
_TRUST = schema_enum(msg.TrustLevel)


class NewCaller(BaseModel):
    email: str = Field(max_length=320, examples=["alice@example.com"], json_schema_extra=_EMAIL)
    display_name: str = Field(default="", max_length=400, examples=["Alice Smith"])
    trust_level: str = Field(
        default="standard",
        max_length=40,
        description="trusted, standard, restricted or blocked (always denied).",
        examples=["trusted"],
        json_schema_extra=_TRUST,
    )


class CallerChange(BaseModel):
    """Fields left out are kept."""

    email: str | None = Field(
        default=None,
        max_length=320,
        examples=["alice@example.com"],
        json_schema_extra=nullable(_EMAIL),
    )
    display_name: str | None = Field(default=None, max_length=400, examples=["Alice Smith"])
    trust_level: str | None = Field(
        default=None, max_length=40, examples=["restricted"], json_schema_extra=nullable(_TRUST)
    )


class DeletedCaller(BaseModel):
    id: str
    deleted: bool = True


@router.post(
    "/api/v1/callers",
    tags=["callers"],
    status_code=201,
    response_model=msg.CallerInfo,
    responses=documented(400, 401, 409),
)
async def create_caller(body: NewCaller, call: TenantCaller) -> msg.CallerInfo:
    """Describe a caller. A booking's caller is found by its ``attendee_email``; the e-mail is
    unique per tenant (case-insensitive): a second caller with it is a 409."""
    return await capabilities.create_caller(call, body.email, body.display_name, body.trust_level)


@router.get(
    "/api/v1/callers", tags=["callers"], response_model=CallerList, responses=documented(401)
)
async def list_callers(call: TenantCaller) -> CallerList:
    """The tenant's callers, oldest first."""
    return await capabilities.list_callers(call)


@router.get(
    "/api/v1/callers/{caller_id}",
    tags=["callers"],
    response_model=msg.CallerInfo,
    responses=documented(401, 404),
)
async def get_caller(caller_id: CallerId, call: TenantCaller) -> msg.CallerInfo:
    """One caller; another tenant's caller is not found (404), like an unknown id."""
    return (await call(msg.GET_CALLER, caller_id=_id(caller_id))).caller


@router.put(
    "/api/v1/callers/{caller_id}",
    tags=["callers"],
    response_model=msg.CallerInfo,
    responses=documented(400, 401, 404, 409),
)
async def update_caller(
    caller_id: CallerId, body: CallerChange, call: TenantCaller
) -> msg.CallerInfo:
    """Change a caller's e-mail, display name or trust level; fields left out are kept."""
    return await capabilities.update_caller(
        call, _id(caller_id), body.email, body.display_name, body.trust_level
    )


@router.delete(
    "/api/v1/callers/{caller_id}",
    tags=["callers"],
    response_model=DeletedCaller,
    responses=documented(401, 404),
)
async def delete_caller(caller_id: CallerId, call: TenantCaller) -> DeletedCaller:
    """Forget a caller: their next bookings are decided as a standard caller's."""
    deleted = await call(msg.DELETE_CALLER, caller_id=_id(caller_id))
    return DeletedCaller(id=deleted.caller_id)


# --- policies --------------------------------------------------------------------------------

_CONDITIONS = (
    "caller_domain (a domain such as example.com, or internal / external relative to the "
    "owner's e-mail domain), caller_email, caller_trust_level, duration_over (minutes, "
    "1-1440), weekday (comma list of mon..sun), outside_hours (HH:MM-HH:MM in the owner's "
    "time zone; may cross midnight)."
)


_NAME: JsonDict = {"minLength": 1, "pattern": formats.VISIBLE_TEXT}
_KINDS = schema_enum(msg.ConditionType)
_ACTIONS = schema_enum(msg.PolicyAction)
# each condition type with the form of its value (the booking service checks both)
_VARIANTS: list[JsonValue] = [
    {
        "properties": {
            "condition_type": {"const": kind.value},
            "condition_value": {"pattern": pattern},
        }
    }
    for kind, pattern in formats.CONDITION_VALUE_PATTERNS.items()
]
_VALUE_PER_KIND: JsonDict = {"oneOf": _VARIANTS}
# a change: a value has the form of some type's (the policy's type decides: booking checks
# the policy the change makes; pairing type and value here too made Schemathesis' coverage
# phase take minutes over this one operation)
_SOME_VALUE: JsonDict = {
    "anyOf": [{"pattern": p} for p in formats.CONDITION_VALUE_PATTERNS.values()]
}


class NewPolicy(BaseModel):
    model_config = ConfigDict(json_schema_extra=_VALUE_PER_KIND)

    name: str = Field(max_length=400, examples=["Block external bookings"], json_schema_extra=_NAME)
    condition_type: str = Field(
        max_length=60, description=_CONDITIONS, examples=["caller_domain"], json_schema_extra=_KINDS
    )
    condition_value: str = Field(max_length=400, examples=["external"])
    action: str = Field(
        max_length=60,
        description="allow, deny or require_confirmation.",
        examples=["deny"],
        json_schema_extra=_ACTIONS,
    )
    priority: int = Field(
        default=0,
        ge=-msg.MAX_PRIORITY,
        le=msg.MAX_PRIORITY,
        description="Higher first; equal priorities are evaluated oldest first.",
        examples=[100],
    )
    enabled: bool = True


class PolicyChange(BaseModel):
    """Fields left out are kept; the resulting policy is validated as a whole."""

    name: str | None = Field(default=None, max_length=400, json_schema_extra=nullable(_NAME))
    condition_type: str | None = Field(
        default=None, max_length=60, description=_CONDITIONS, json_schema_extra=nullable(_KINDS)
    )
    condition_value: str | None = Field(
        default=None, max_length=400, json_schema_extra=nullable(_SOME_VALUE)
    )
    action: str | None = Field(default=None, max_length=60, json_schema_extra=nullable(_ACTIONS))
    priority: int | None = Field(default=None, ge=-msg.MAX_PRIORITY, le=msg.MAX_PRIORITY)
    enabled: bool | None = None


class DeletedPolicy(BaseModel):
    id: str
    deleted: bool = True


@router.post(
    "/api/v1/policies",
    tags=["policies"],
    status_code=201,
    response_model=msg.PolicyInfo,
    responses=documented(400, 401, 409),
)
async def create_policy(body: NewPolicy, call: TenantCaller) -> msg.PolicyInfo:
    """Create a booking policy. Each booking is decided by the enabled policies in order of
    descending priority (ties: oldest first): the first that matches decides, and none
    matching allows. A ``blocked`` caller is always denied. Unknown condition types, values or
    actions are refused here with a 400, never at booking time."""
    return await capabilities.create_policy(
        call,
        body.name,
        body.condition_type,
        body.condition_value,
        body.action,
        body.priority,
        body.enabled,
    )


@router.get(
    "/api/v1/policies", tags=["policies"], response_model=PolicyList, responses=documented(401)
)
async def list_policies(call: TenantCaller) -> PolicyList:
    """The tenant's policies in evaluation order."""
    return await capabilities.list_policies(call)


@router.get(
    "/api/v1/policies/{policy_id}",
    tags=["policies"],
    response_model=msg.PolicyInfo,
    responses=documented(401, 404),
)
async def get_policy(policy_id: PolicyId, call: TenantCaller) -> msg.PolicyInfo:
    return (await call(msg.GET_POLICY, policy_id=_id(policy_id))).policy


@router.put(
    "/api/v1/policies/{policy_id}",
    tags=["policies"],
    response_model=msg.PolicyInfo,
    responses=documented(400, 401, 404),
)
async def update_policy(
    policy_id: PolicyId, body: PolicyChange, call: TenantCaller
) -> msg.PolicyInfo:
    """Change some fields of a policy; fields left out are kept."""
    updated = await call(msg.UPDATE_POLICY, policy_id=_id(policy_id), **body.model_dump())
    return updated.policy


@router.delete(
    "/api/v1/policies/{policy_id}",
    tags=["policies"],
    response_model=DeletedPolicy,
    responses=documented(401, 404),
)
async def delete_policy(policy_id: PolicyId, call: TenantCaller) -> DeletedPolicy:
    deleted = await call(msg.DELETE_POLICY, policy_id=_id(policy_id))
    return DeletedPolicy(id=deleted.policy_id)
