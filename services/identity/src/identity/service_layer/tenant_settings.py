"""A tenant's settings: read them, change them (each change one SettingsChanged event)."""

from __future__ import annotations

from collections.abc import Mapping

from contracts import identity as msg
from contracts.envelope import Message
from contracts.formats import InvalidValue
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import require_tenant
from identity.adapters import tenants
from identity.domain import rules
from identity.service_layer.deps import IdentityDeps
from identity.service_layer.tenancy import conflict, invalid, live_tenant, settings_of


async def get_settings(cmd: msg.GetSettings, deps: IdentityDeps) -> msg.SettingsReply:
    tenant_id = require_tenant(cmd)
    # one SELECT: autocommit, no BEGIN/ROLLBACK round trips
    async with deps.reader() as uow:
        return msg.SettingsReply(settings=settings_of(await live_tenant(uow, tenant_id)))


def validated_changes(cmd: msg.UpdateSettings) -> dict[str, object]:
    """The columns the command sets, checked and in their stored form (``booking_rules``:
    only the fields it gives, to be merged over the stored ones)."""
    changes: dict[str, object] = {}
    try:
        if cmd.slug is not None:
            changes["slug"] = rules.check_slug(cmd.slug)
        if cmd.open_scheduling is not None:
            changes["open_scheduling"] = cmd.open_scheduling
        if cmd.booking_rules is not None:
            changes["booking_rules"] = cmd.booking_rules.model_dump(exclude_none=True)
        if cmd.user_type is not None:
            changes["user_type"] = rules.check_user_type(cmd.user_type).value
        if cmd.timezone is not None:
            changes["timezone"] = rules.check_timezone(cmd.timezone)
        if cmd.working_hours is not None:
            hours = rules.check_working_hours(cmd.working_hours)
            changes["working_hours"] = {
                d: [i.model_dump() for i in ivs] for d, ivs in hours.items()
            }
        if cmd.display_name is not None:
            changes["display_name"] = rules.check_display_name(cmd.display_name)
    except InvalidValue as refused:
        raise invalid(refused) from refused
    return changes


async def update_settings(cmd: msg.UpdateSettings, deps: IdentityDeps) -> msg.SettingsReply:
    tenant_id = require_tenant(cmd)
    changes = validated_changes(cmd)
    try:
        async with deps.uow() as uow:
            current = await live_tenant(uow, tenant_id, lock=True)
            if cmd.booking_rules is not None:
                changes["booking_rules"] = {
                    **current.booking_rules,
                    **cmd.booking_rules.model_dump(exclude_none=True),
                }
            changes = {k: v for k, v in changes.items() if getattr(current, k) != v}
            settings = await apply_settings(uow, cmd, tenant_id, changes)
            await uow.commit()
    except tenants.Taken as taken:
        raise conflict(taken) from taken
    return msg.SettingsReply(settings=settings)


async def apply_settings(
    uow: UnitOfWork, cause: Message, tenant_id: str, changes: Mapping[str, object]
) -> msg.TenantSettings:
    """Write ``changes`` and announce them (nothing is announced when there are none)."""
    settings = settings_of(await tenants.update(uow, tenant_id, changes))
    if changes:
        await uow.add_event(
            msg.SETTINGS_CHANGED.subject,
            msg.SettingsChanged(
                **cause.caused(tenant_id=tenant_id), settings=settings, changed=sorted(changes)
            ),
        )
    return settings
