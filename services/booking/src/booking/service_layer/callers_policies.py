"""Callers and policies: one handler per command, each in one unit of work.

Every query is scoped to the envelope's tenant, so another tenant's id is simply not
found. :func:`decide_for_booking` is what the booking saga asks before holding a slot.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from booking.adapters.policy_tables import callers, policies
from booking.domain import policies as rules
from booking.domain.policies import BookingFacts, Decision, PolicyInvalid
from contracts import policies as msg
from contracts.envelope import Message
from contracts.policies import ConditionType, PolicyAction, TrustLevel
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError
from cortex_runtime.service import ServiceRuntime
from cortex_runtime.text import clean_text

UowFactory = Callable[[], UnitOfWork]

MAX_CALLERS: Final = 1000
MAX_POLICIES: Final = 100

CALLER_NOT_FOUND: Final = ServiceError(ErrorKind.NOT_FOUND, "caller_not_found", "No such caller.")
POLICY_NOT_FOUND: Final = ServiceError(ErrorKind.NOT_FOUND, "policy_not_found", "No such policy.")
CALLER_EXISTS: Final = ServiceError(
    ErrorKind.CONFLICT, "caller_exists", "A caller with that e-mail already exists."
)
NO_TENANT: Final = ServiceError(
    ErrorKind.UNAUTHORIZED, "tenant_required", "The request names no tenant."
)


def _id(kind: str) -> str:
    return f"{kind}_{uuid.uuid4().hex[:20]}"


def invalid(error: PolicyInvalid) -> ServiceError:
    return ServiceError(ErrorKind.INVALID, error.code, str(error))


def _tenant(cmd: Message) -> str:
    if not cmd.tenant_id:
        raise NO_TENANT
    return cmd.tenant_id


def _constraint(exc: IntegrityError) -> str:
    cause = getattr(exc.orig, "__cause__", None)
    return str(getattr(cause, "constraint_name", "") or getattr(exc.orig, "constraint_name", ""))


def _conflict(exc: IntegrityError) -> Exception:
    return CALLER_EXISTS if _constraint(exc) == "callers_tenant_email" else exc


async def _lock_tenant(uow: UnitOfWork, what: str, tenant_id: str) -> None:
    """Serialise creations of one kind for one tenant, so the count limit holds."""
    await uow.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{what}:{tenant_id}")))
    )


async def _count(uow: UnitOfWork, table: sa.Table, tenant_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(table.c.tenant_id == tenant_id)
    return int((await uow.execute(query)).scalar_one())


# --- callers --------------------------------------------------------------------------------


def caller_info(row: sa.Row[Any]) -> msg.CallerInfo:
    return msg.CallerInfo(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        trust_level=TrustLevel(row.trust_level),
        created_at=row.created_at,
    )


def _caller_fields(
    email: str | None, display_name: str | None, trust_level: str | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    try:
        if email is not None:
            fields["email"] = rules.check_email(email)
        if display_name is not None:
            fields["display_name"] = clean_text(display_name, rules.MAX_NAME)
        if trust_level is not None:
            fields["trust_level"] = rules.check_trust_level(trust_level).value
    except PolicyInvalid as error:
        raise invalid(error) from error
    return fields


async def _insert_caller(uow: UnitOfWork, tenant_id: str, fields: dict[str, Any]) -> sa.Row[Any]:
    """A new caller of the tenant, whose ``callers`` lock the unit of work holds."""
    if await _count(uow, callers, tenant_id) >= MAX_CALLERS:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "too_many_callers",
            f"A tenant may describe at most {MAX_CALLERS} callers.",
        )
    now = sa.func.clock_timestamp()
    statement = (
        sa.insert(callers)
        .values(id=_id("clr"), tenant_id=tenant_id, created_at=now, updated_at=now, **fields)
        .returning(callers)
    )
    return (await uow.execute(statement)).one()


async def create_caller(cmd: msg.CreateCaller, uow_factory: UowFactory) -> msg.CallerReply:
    tenant_id = _tenant(cmd)
    fields = _caller_fields(cmd.email, cmd.display_name, cmd.trust_level)
    try:
        async with uow_factory() as uow:
            await _lock_tenant(uow, "callers", tenant_id)
            row = await _insert_caller(uow, tenant_id, fields)
            await uow.commit()
    except IntegrityError as exc:
        raise _conflict(exc) from exc
    return msg.CallerReply(caller=caller_info(row))


async def upsert_caller(cmd: msg.UpsertCaller, uow_factory: UowFactory) -> msg.CallerReply:
    """The caller with this e-mail address (any case) changed, or created when the tenant
    has none: one transaction under the tenant's callers lock, so two upserts of one
    address make one caller."""
    tenant_id = _tenant(cmd)
    fields = _caller_fields(cmd.email, cmd.display_name, cmd.trust_level)
    async with uow_factory() as uow:
        await _lock_tenant(uow, "callers", tenant_id)
        statement = (
            sa.update(callers)
            .where(
                callers.c.tenant_id == tenant_id,
                sa.func.lower(callers.c.email) == sa.func.lower(fields["email"]),
            )
            .values(**fields, updated_at=sa.func.clock_timestamp())
            .returning(callers)
        )
        row = (await uow.execute(statement)).first() or await _insert_caller(uow, tenant_id, fields)
        await uow.commit()
    return msg.CallerReply(caller=caller_info(row))


async def list_callers(cmd: msg.ListCallers, uow_factory: UowFactory) -> msg.CallerList:
    tenant_id = _tenant(cmd)
    async with uow_factory() as uow:
        rows = await uow.execute(
            sa.select(callers)
            .where(callers.c.tenant_id == tenant_id)
            .order_by(callers.c.created_at, callers.c.id)
        )
        return msg.CallerList(callers=[caller_info(row) for row in rows])


async def get_caller(cmd: msg.GetCaller, uow_factory: UowFactory) -> msg.CallerReply:
    tenant_id = _tenant(cmd)
    async with uow_factory() as uow:
        row = (
            await uow.execute(
                sa.select(callers).where(
                    callers.c.id == cmd.caller_id, callers.c.tenant_id == tenant_id
                )
            )
        ).first()
    if row is None:
        raise CALLER_NOT_FOUND
    return msg.CallerReply(caller=caller_info(row))


async def update_caller(cmd: msg.UpdateCaller, uow_factory: UowFactory) -> msg.CallerReply:
    tenant_id = _tenant(cmd)
    fields = _caller_fields(cmd.email, cmd.display_name, cmd.trust_level)
    mine = (callers.c.id == cmd.caller_id, callers.c.tenant_id == tenant_id)
    try:
        async with uow_factory() as uow:
            if fields:
                statement = (
                    sa.update(callers)
                    .where(*mine)
                    .values(**fields, updated_at=sa.func.clock_timestamp())
                    .returning(callers)
                )
                row = (await uow.execute(statement)).first()
            else:
                row = (await uow.execute(sa.select(callers).where(*mine))).first()
            if row is None:
                raise CALLER_NOT_FOUND
            await uow.commit()
    except IntegrityError as exc:
        raise _conflict(exc) from exc
    return msg.CallerReply(caller=caller_info(row))


async def delete_caller(cmd: msg.DeleteCaller, uow_factory: UowFactory) -> msg.CallerDeleted:
    tenant_id = _tenant(cmd)
    async with uow_factory() as uow:
        row = (
            await uow.execute(
                sa.delete(callers)
                .where(callers.c.id == cmd.caller_id, callers.c.tenant_id == tenant_id)
                .returning(callers.c.id)
            )
        ).first()
        if row is None:
            raise CALLER_NOT_FOUND
        await uow.commit()
    return msg.CallerDeleted(caller_id=row.id)


# --- policies -------------------------------------------------------------------------------


def policy_info(row: sa.Row[Any]) -> msg.PolicyInfo:
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


def _checked_policy(
    name: str, condition_type: str, condition_value: str, action: str
) -> dict[str, Any]:
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


_IN_EVALUATION_ORDER: Final = (policies.c.priority.desc(), policies.c.created_at, policies.c.id)


async def create_policy(cmd: msg.CreatePolicy, uow_factory: UowFactory) -> msg.PolicyReply:
    tenant_id = _tenant(cmd)
    fields = _checked_policy(cmd.name, cmd.condition_type, cmd.condition_value, cmd.action)
    async with uow_factory() as uow:
        await _lock_tenant(uow, "policies", tenant_id)
        if await _count(uow, policies, tenant_id) >= MAX_POLICIES:
            raise ServiceError(
                ErrorKind.CONFLICT,
                "too_many_policies",
                f"A tenant may hold at most {MAX_POLICIES} policies.",
            )
        now = sa.func.clock_timestamp()  # distinct within a transaction: "oldest first" holds
        row = (
            await uow.execute(
                sa.insert(policies)
                .values(
                    id=_id("pol"),
                    tenant_id=tenant_id,
                    priority=cmd.priority,
                    enabled=cmd.enabled,
                    created_at=now,
                    updated_at=now,
                    **fields,
                )
                .returning(policies)
            )
        ).one()
        await uow.commit()
    return msg.PolicyReply(policy=policy_info(row))


async def list_policies(cmd: msg.ListPolicies, uow_factory: UowFactory) -> msg.PolicyList:
    tenant_id = _tenant(cmd)
    async with uow_factory() as uow:
        rows = await uow.execute(
            sa.select(policies)
            .where(policies.c.tenant_id == tenant_id)
            .order_by(*_IN_EVALUATION_ORDER)
        )
        return msg.PolicyList(policies=[policy_info(row) for row in rows])


async def get_policy(cmd: msg.GetPolicy, uow_factory: UowFactory) -> msg.PolicyReply:
    tenant_id = _tenant(cmd)
    async with uow_factory() as uow:
        row = (
            await uow.execute(
                sa.select(policies).where(
                    policies.c.id == cmd.policy_id, policies.c.tenant_id == tenant_id
                )
            )
        ).first()
    if row is None:
        raise POLICY_NOT_FOUND
    return msg.PolicyReply(policy=policy_info(row))


async def update_policy(cmd: msg.UpdatePolicy, uow_factory: UowFactory) -> msg.PolicyReply:
    tenant_id = _tenant(cmd)
    mine = (policies.c.id == cmd.policy_id, policies.c.tenant_id == tenant_id)
    async with uow_factory() as uow:
        current = (await uow.execute(sa.select(policies).where(*mine).with_for_update())).first()
        if current is None:
            raise POLICY_NOT_FOUND
        changes = _checked_policy(
            current.name if cmd.name is None else cmd.name,
            current.condition_type if cmd.condition_type is None else cmd.condition_type,
            current.condition_value if cmd.condition_value is None else cmd.condition_value,
            current.action if cmd.action is None else cmd.action,
        )
        if cmd.priority is not None:
            changes["priority"] = cmd.priority
        if cmd.enabled is not None:
            changes["enabled"] = cmd.enabled
        changes = {k: v for k, v in changes.items() if getattr(current, k) != v}
        if not changes:
            return msg.PolicyReply(policy=policy_info(current))
        row = (
            await uow.execute(
                sa.update(policies)
                .where(*mine)
                .values(**changes, updated_at=sa.func.clock_timestamp())
                .returning(policies)
            )
        ).one()
        await uow.commit()
    return msg.PolicyReply(policy=policy_info(row))


async def delete_policy(cmd: msg.DeletePolicy, uow_factory: UowFactory) -> msg.PolicyDeleted:
    tenant_id = _tenant(cmd)
    async with uow_factory() as uow:
        row = (
            await uow.execute(
                sa.delete(policies)
                .where(policies.c.id == cmd.policy_id, policies.c.tenant_id == tenant_id)
                .returning(policies.c.id)
            )
        ).first()
        if row is None:
            raise POLICY_NOT_FOUND
        await uow.commit()
    return msg.PolicyDeleted(policy_id=row.id)


# --- for the booking saga -----------------------------------------------------------------------


async def caller_trust_level(uow: UnitOfWork, tenant_id: str, email: str) -> TrustLevel:
    """The trust level of the tenant's caller with that e-mail; standard when unknown."""
    level = (
        await uow.execute(
            sa.select(callers.c.trust_level).where(
                callers.c.tenant_id == tenant_id,
                sa.func.lower(callers.c.email) == rules.normalise_email(email),
            )
        )
    ).scalar_one_or_none()
    return TrustLevel.STANDARD if level is None else TrustLevel(level)


async def decide_for_booking(uow: UnitOfWork, tenant_id: str, facts: BookingFacts) -> Decision:
    """Decide a booking in ``uow``: the stored caller's trust level, then the policies.

    ``facts.caller_trust_level`` is replaced by the level of the caller found by
    ``facts.attendee_email`` (case-insensitive), ``standard`` when there is none.
    """
    level = await caller_trust_level(uow, tenant_id, facts.attendee_email)
    rows = await uow.execute(
        sa.select(policies)
        .where(policies.c.tenant_id == tenant_id, policies.c.enabled.is_(True))
        .order_by(*_IN_EVALUATION_ORDER)
    )
    return rules.decide(
        [policy_info(row) for row in rows], dataclasses.replace(facts, caller_trust_level=level)
    )


# --- wiring ---------------------------------------------------------------------------------------


def register(runtime: ServiceRuntime, uow_factory: UowFactory) -> None:
    """Serve every caller and policy RPC on ``runtime``."""

    @runtime.rpc(msg.CREATE_CALLER)
    async def on_create_caller(cmd: msg.CreateCaller) -> msg.CallerReply:
        return await create_caller(cmd, uow_factory)

    @runtime.rpc(msg.LIST_CALLERS)
    async def on_list_callers(cmd: msg.ListCallers) -> msg.CallerList:
        return await list_callers(cmd, uow_factory)

    @runtime.rpc(msg.GET_CALLER)
    async def on_get_caller(cmd: msg.GetCaller) -> msg.CallerReply:
        return await get_caller(cmd, uow_factory)

    @runtime.rpc(msg.UPDATE_CALLER)
    async def on_update_caller(cmd: msg.UpdateCaller) -> msg.CallerReply:
        return await update_caller(cmd, uow_factory)

    @runtime.rpc(msg.UPSERT_CALLER)
    async def on_upsert_caller(cmd: msg.UpsertCaller) -> msg.CallerReply:
        return await upsert_caller(cmd, uow_factory)

    @runtime.rpc(msg.DELETE_CALLER)
    async def on_delete_caller(cmd: msg.DeleteCaller) -> msg.CallerDeleted:
        return await delete_caller(cmd, uow_factory)

    @runtime.rpc(msg.CREATE_POLICY)
    async def on_create_policy(cmd: msg.CreatePolicy) -> msg.PolicyReply:
        return await create_policy(cmd, uow_factory)

    @runtime.rpc(msg.LIST_POLICIES)
    async def on_list_policies(cmd: msg.ListPolicies) -> msg.PolicyList:
        return await list_policies(cmd, uow_factory)

    @runtime.rpc(msg.GET_POLICY)
    async def on_get_policy(cmd: msg.GetPolicy) -> msg.PolicyReply:
        return await get_policy(cmd, uow_factory)

    @runtime.rpc(msg.UPDATE_POLICY)
    async def on_update_policy(cmd: msg.UpdatePolicy) -> msg.PolicyReply:
        return await update_policy(cmd, uow_factory)

    @runtime.rpc(msg.DELETE_POLICY)
    async def on_delete_policy(cmd: msg.DeletePolicy) -> msg.PolicyDeleted:
        return await delete_policy(cmd, uow_factory)
