"""What every tenant command shares: its errors, the settings message, a live tenant."""

from __future__ import annotations

from contracts import identity as msg
from contracts.formats import InvalidValue
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError
from identity.adapters import tenants
from identity.adapters.tables import TenantRow

SLUG_TAKEN = ServiceError(ErrorKind.CONFLICT, "slug_taken", "That slug is already taken.")
EMAIL_TAKEN = ServiceError(
    ErrorKind.CONFLICT, "email_taken", "A tenant with that e-mail already exists."
)
TENANT_NOT_FOUND = ServiceError(ErrorKind.NOT_FOUND, "tenant_not_found", "No such tenant.")


def invalid(refused: InvalidValue) -> ServiceError:
    """The answer to a value a rule refuses (identity's own, or a shared one)."""
    return ServiceError(ErrorKind.INVALID, refused.code, str(refused))


def conflict(taken: tenants.Taken) -> ServiceError:
    """The sentence for a unique value a tenant change ran into."""
    return SLUG_TAKEN if taken.field == "slug" else EMAIL_TAKEN


def settings_of(row: TenantRow) -> msg.TenantSettings:
    return msg.TenantSettings(
        tenant_id=row.id,
        email=row.email,
        display_name=row.display_name,
        slug=row.slug,
        open_scheduling=row.open_scheduling,
        user_type=msg.UserType(row.user_type),
        timezone=row.timezone,
        working_hours={d: row.working_hours[d] for d in msg.WEEKDAYS if d in row.working_hours},
        booking_rules=msg.BookingRules.model_validate(row.booking_rules),
        updated_at=row.updated_at,
        version=row.version,
    )


async def live_tenant(uow: UnitOfWork, tenant_id: str, lock: bool = False) -> TenantRow:
    """The tenant, unless it is unknown or deleted (TENANT_NOT_FOUND)."""
    row = await tenants.live(uow, tenant_id, lock=lock)
    if row is None:
        raise TENANT_NOT_FOUND
    return row
