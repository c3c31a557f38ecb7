"""What handlers of a tenant's request check besides whose it is
(:func:`cortex_runtime.errors.require_tenant`): whether the tenant still exists, and the
plan it is on."""

from __future__ import annotations

from billing.adapters.tenants import Tenant
from billing.domain.plans import FREE_TIER, Plan
from billing.service_layer.deps import BillingDeps
from contracts.identity import UserType
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

TENANT_DELETED = ServiceError(
    ErrorKind.NOT_FOUND, "tenant_deleted", "This account has been deleted."
)


def refuse_deleted(tenant: Tenant | None) -> None:
    if tenant is not None and tenant.deleted_at is not None:
        raise TENANT_DELETED


def plan_of(deps: BillingDeps, tenant: Tenant | None) -> tuple[Plan, UserType]:
    """The tenant's plan and user type; one billing has not heard of is on the free tier."""
    if tenant is None:
        return deps.plans[FREE_TIER], UserType.INDIVIDUAL
    return deps.plans[tenant.tier], tenant.user_type
