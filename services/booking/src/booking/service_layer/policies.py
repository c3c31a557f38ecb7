"""Booking policies: a tenant's rules that allow, deny or ask the owner to confirm a
booking. One handler per command, each in one unit of work, every query scoped to the
envelope's tenant. :func:`decide_for_booking` is what the saga asks before holding a slot.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final, cast

from booking.adapters import policies
from booking.adapters.policies import Policy
from booking.domain import policies as rules
from booking.domain.policies import BookingFacts, Decision, PolicyInvalid
from booking.service_layer.callers import invalid, trust_level
from booking.service_layer.deps import BookingDeps
from contracts import policies as msg
from contracts.formats import IdPrefix, new_id
from contracts.policies import ConditionType, PolicyAction
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError, require_tenant

if TYPE_CHECKING:
    from booking.adapters.policies import PolicyChanges, PolicyDefinition

MAX_POLICIES: Final = 100

POLICY_NOT_FOUND: Final = ServiceError(ErrorKind.NOT_FOUND, "policy_not_found", "No such policy.")


def policy_info(row: Policy) -> msg.PolicyInfo:
    return msg.PolicyInfo(
        id=row.id,
        name=row.name,
        condition_type=ConditionType(row.condition_type),
        condition_value=row.condition_value,
        action=PolicyAction(row.action),
        priority=row.priority,
        enabled=row.enabled,
        created_at=row.created_at,
    )


def _checked(name: str, condition_type: str, condition_value: str, action: str) -> PolicyDefinition:
    try:
        valid = rules.validate_policy(condition_type, condition_value, action)
        return {
            "name": rules.check_name(name),
            "condition_type": valid.condition_type.value,
            "condition_value": valid.condition_value,
            "action": valid.action.value,
        }
    except PolicyInvalid as error:
        raise invalid(error) from error


async def create_policy(cmd: msg.CreatePolicy, deps: BookingDeps) -> msg.PolicyReply:
    tenant_id = require_tenant(cmd)
    fields = _checked(cmd.name, cmd.condition_type, cmd.condition_value, cmd.action)
    async with deps.uow() as uow:
        await policies.lock(uow, tenant_id)
        if await policies.count(uow, tenant_id) >= MAX_POLICIES:
            raise ServiceError(
                ErrorKind.CONFLICT,
                "too_many_policies",
                f"A tenant may hold at most {MAX_POLICIES} policies.",
            )
        row = await policies.insert(
            uow,
            new_id(IdPrefix.POLICY),
            tenant_id,
            priority=cmd.priority,
            enabled=cmd.enabled,
            **fields,
        )
        await uow.commit()
    return msg.PolicyReply(policy=policy_info(row))


async def list_policies(cmd: msg.ListPolicies, deps: BookingDeps) -> msg.PolicyList:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        rows = await policies.all_of(uow, tenant_id)
    return msg.PolicyList(policies=[policy_info(row) for row in rows])


async def get_policy(cmd: msg.GetPolicy, deps: BookingDeps) -> msg.PolicyReply:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        row = await policies.get(uow, tenant_id, cmd.policy_id)
    if row is None:
        raise POLICY_NOT_FOUND
    return msg.PolicyReply(policy=policy_info(row))


async def update_policy(cmd: msg.UpdatePolicy, deps: BookingDeps) -> msg.PolicyReply:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        current = await policies.get(uow, tenant_id, cmd.policy_id, for_update=True)
        if current is None:
            raise POLICY_NOT_FOUND
        changes: dict[str, object] = dict(
            _checked(
                current.name if cmd.name is None else cmd.name,
                current.condition_type if cmd.condition_type is None else cmd.condition_type,
                current.condition_value if cmd.condition_value is None else cmd.condition_value,
                current.action if cmd.action is None else cmd.action,
            )
        )
        if cmd.priority is not None:
            changes["priority"] = cmd.priority
        if cmd.enabled is not None:
            changes["enabled"] = cmd.enabled
        changed = cast(
            "PolicyChanges", {k: v for k, v in changes.items() if getattr(current, k) != v}
        )
        if not changed:
            return msg.PolicyReply(policy=policy_info(current))
        row = await policies.update(uow, tenant_id, cmd.policy_id, **changed)
        await uow.commit()
    return msg.PolicyReply(policy=policy_info(row))


async def delete_policy(cmd: msg.DeletePolicy, deps: BookingDeps) -> msg.PolicyDeleted:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        if not await policies.delete(uow, tenant_id, cmd.policy_id):
            raise POLICY_NOT_FOUND
        await uow.commit()
    return msg.PolicyDeleted(policy_id=cmd.policy_id)


async def decide_for_booking(uow: UnitOfWork, tenant_id: str, facts: BookingFacts) -> Decision:
    """Decide a booking in ``uow``: the stored caller's trust level, then the policies.

    ``facts.caller_trust_level`` is replaced by the level of the caller found by
    ``facts.attendee_email`` (case-insensitive), ``standard`` when there is none.
    """
    level = await trust_level(uow, tenant_id, facts.attendee_email)
    rows = await policies.all_of(uow, tenant_id, enabled_only=True)
    return rules.decide(
        [policy_info(row) for row in rows], dataclasses.replace(facts, caller_trust_level=level)
    )
