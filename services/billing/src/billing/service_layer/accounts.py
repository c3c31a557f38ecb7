"""What every handler of a tenant's request checks first: whose request it is, whether the
tenant still exists, and the plan it is on."""

from __future__ import annotations

from billing.adapters.tenants import Tenant
from billing.domain.plans import FREE_TIER, Plan
from billing.service_layer.deps import BillingDeps
from contracts.envelope import Message
from contracts.identity import UserType
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

TENANT_DELETED = ServiceError(
    ErrorKind.NOT_FOUND, "tenant_deleted", "This account has been deleted."
)


def _tenant_required() -> ServiceError:
    return ServiceError(ErrorKind.INVALID, "tenant_required", "The request names no tenant.")


def tenant_id_of(cmd: Message) -> str:
    """The tenant the request is made for; refused when it names none."""
    tenant_id: str | None = cmd.tenant_id
    if not tenant_id:
        raise _tenant_required()
    return tenant_id


def refuse_deleted(tenant: Tenant | None) -> None:
    if tenant is not None and tenant.deleted_at is not None:
        raise TENANT_DELETED


def plan_of(deps: BillingDeps, tenant: Tenant | None) -> tuple[Plan, UserType]:
    """The tenant's plan and user type; one billing has not heard of is on the free tier."""
    if tenant is None:
        return deps.plans[FREE_TIER], UserType.INDIVIDUAL
    return deps.plans[tenant.tier], tenant.user_type
