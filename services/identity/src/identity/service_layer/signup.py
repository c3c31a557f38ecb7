"""Signing up: a tenant is provisioned (from Clerk, or the dev CLI) with default settings."""

from __future__ import annotations

from contracts import identity as msg
from contracts.formats import IdPrefix, InvalidValue, new_id, parse_email
from cortex_runtime.database import UnitOfWork
from identity.adapters import tenants
from identity.adapters.tables import NewTenant
from identity.domain import rules
from identity.service_layer.api_keys import add_key
from identity.service_layer.deps import IdentityDeps
from identity.service_layer.tenancy import conflict, invalid, settings_of


async def provision_tenant(cmd: msg.ProvisionTenant, deps: IdentityDeps) -> msg.TenantProvisioned:
    try:
        async with deps.uow() as uow:
            reply = await provision_in(uow, cmd)
            await uow.commit()
            return reply
    except tenants.Taken as taken:
        if taken.field == "external_id" and cmd.external_id:
            async with deps.uow() as uow:  # a concurrent delivery created it first
                return await provision_in(uow, cmd)
        raise conflict(taken) from taken


async def provision_in(uow: UnitOfWork, cmd: msg.ProvisionTenant) -> msg.TenantProvisioned:
    """Create the tenant in ``uow`` unless one with the same external id exists."""
    try:
        email = parse_email(cmd.email)
        slug = rules.check_slug(cmd.slug) if cmd.slug else None
    except InvalidValue as refused:
        raise invalid(refused) from refused
    if cmd.external_id:
        existing = await tenants.by_external_id(uow, cmd.external_id)
        if existing is not None:
            return msg.TenantProvisioned(created=False, settings=settings_of(existing))
    display_name = rules.first_display_name(cmd.display_name, email)
    row = await tenants.insert(
        uow,
        NewTenant(
            id=new_id(IdPrefix.TENANT),
            external_id=cmd.external_id,
            email=email,
            display_name=display_name,
            user_type=cmd.user_type.value,
            slug=slug,
            timezone="UTC",
            working_hours={
                day: [i.model_dump() for i in intervals]
                for day, intervals in rules.DEFAULT_WORKING_HOURS.items()
            },
            booking_rules=msg.BookingRules().model_dump(),
        ),
    )
    settings = settings_of(row)
    await uow.add_event(
        msg.TENANT_CREATED.subject,
        msg.TenantCreated(**cmd.caused(tenant_id=settings.tenant_id), settings=settings),
    )
    key = None
    if cmd.first_key_name:
        created = await add_key(uow, cmd, settings.tenant_id, cmd.first_key_name)
        key = created.key
    return msg.TenantProvisioned(created=True, settings=settings, key=key)
