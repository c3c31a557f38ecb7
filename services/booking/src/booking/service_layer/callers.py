"""Callers: the people and agents a tenant describes, with a trust level its policies read.

One handler per command, each in one unit of work, every query scoped to the envelope's
tenant (another tenant's id is simply not found)."""

from __future__ import annotations

from typing import Final

from booking.adapters import callers
from booking.adapters.callers import Caller, CallerFields
from booking.adapters.database_errors import ConstraintViolated
from booking.domain import policies as rules
from booking.domain import texts
from booking.domain.policies import PolicyInvalid
from booking.service_layer.deps import BookingDeps
from contracts import policies as msg
from contracts.formats import IdPrefix, new_id, normalise_email
from contracts.policies import TrustLevel
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError, require_tenant

MAX_CALLERS: Final = 1000

CALLER_NOT_FOUND: Final = ServiceError(ErrorKind.NOT_FOUND, "caller_not_found", "No such caller.")
CALLER_EXISTS: Final = ServiceError(
    ErrorKind.CONFLICT, "caller_exists", "A caller with that e-mail already exists."
)


def invalid(error: PolicyInvalid) -> ServiceError:
    return ServiceError(ErrorKind.INVALID, error.code, str(error))


def _taken(exc: ConstraintViolated) -> Exception:
    return CALLER_EXISTS if exc.constraint == callers.EMAIL_TAKEN else exc


def caller_info(row: Caller) -> msg.CallerInfo:
    return msg.CallerInfo(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        trust_level=TrustLevel(row.trust_level),
        created_at=row.created_at,
    )


def _fields(email: str | None, display_name: str | None, trust_level: str | None) -> CallerFields:
    try:
        return CallerFields(
            email=rules.check_email(email) if email is not None else None,
            display_name=texts.name(display_name) if display_name is not None else None,
            trust_level=rules.check_trust_level(trust_level).value
            if trust_level is not None
            else None,
        )
    except PolicyInvalid as error:
        raise invalid(error) from error


async def _insert(uow: UnitOfWork, tenant_id: str, fields: CallerFields) -> Caller:
    """A new caller of the tenant, whose callers lock the unit of work holds."""
    if await callers.count(uow, tenant_id) >= MAX_CALLERS:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "too_many_callers",
            f"A tenant may describe at most {MAX_CALLERS} callers.",
        )
    return await callers.insert(uow, new_id(IdPrefix.CALLER), tenant_id, fields)


async def create_caller(cmd: msg.CreateCaller, deps: BookingDeps) -> msg.CallerReply:
    tenant_id = require_tenant(cmd)
    fields = _fields(cmd.email, cmd.display_name, cmd.trust_level)
    try:
        async with deps.uow() as uow:
            await callers.lock(uow, tenant_id)
            row = await _insert(uow, tenant_id, fields)
            await uow.commit()
    except ConstraintViolated as exc:
        raise _taken(exc) from exc
    return msg.CallerReply(caller=caller_info(row))


async def upsert_caller(cmd: msg.UpsertCaller, deps: BookingDeps) -> msg.CallerReply:
    """The caller with this e-mail address (any case) changed, or created when the tenant
    has none: one transaction under the tenant's callers lock, so two upserts of one
    address make one caller."""
    tenant_id = require_tenant(cmd)
    fields = _fields(cmd.email, cmd.display_name, cmd.trust_level)
    async with deps.uow() as uow:
        await callers.lock(uow, tenant_id)
        row = await callers.update_by_email(uow, tenant_id, fields) or await _insert(
            uow, tenant_id, fields
        )
        await uow.commit()
    return msg.CallerReply(caller=caller_info(row))


async def list_callers(cmd: msg.ListCallers, deps: BookingDeps) -> msg.CallerList:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        rows = await callers.all_of(uow, tenant_id)
    return msg.CallerList(callers=[caller_info(row) for row in rows])


async def get_caller(cmd: msg.GetCaller, deps: BookingDeps) -> msg.CallerReply:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        row = await callers.get(uow, tenant_id, cmd.caller_id)
    if row is None:
        raise CALLER_NOT_FOUND
    return msg.CallerReply(caller=caller_info(row))


async def update_caller(cmd: msg.UpdateCaller, deps: BookingDeps) -> msg.CallerReply:
    tenant_id = require_tenant(cmd)
    fields = _fields(cmd.email, cmd.display_name, cmd.trust_level)
    try:
        async with deps.uow() as uow:
            row = await callers.update(uow, tenant_id, cmd.caller_id, fields)
            if row is None:
                raise CALLER_NOT_FOUND
            await uow.commit()
    except ConstraintViolated as exc:
        raise _taken(exc) from exc
    return msg.CallerReply(caller=caller_info(row))


async def delete_caller(cmd: msg.DeleteCaller, deps: BookingDeps) -> msg.CallerDeleted:
    tenant_id = require_tenant(cmd)
    async with deps.uow() as uow:
        if not await callers.delete(uow, tenant_id, cmd.caller_id):
            raise CALLER_NOT_FOUND
        await uow.commit()
    return msg.CallerDeleted(caller_id=cmd.caller_id)


async def trust_level(uow: UnitOfWork, tenant_id: str, email: str) -> TrustLevel:
    """The trust level of the tenant's caller with that e-mail; standard when unknown."""
    level = await callers.trust_level(uow, tenant_id, normalise_email(email))
    return TrustLevel.STANDARD if level is None else TrustLevel(level)
