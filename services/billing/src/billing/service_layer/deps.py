"""What billing's handlers are given: :class:`BillingDeps`, built once by the bootstrap.

Every handler is ``(cmd, deps)``, an event handler ``(event, deps, uow)``
(``billing.entrypoints.handlers`` has the table). The ports are the interfaces of the
adapters the handlers call out to, declared here so that adapters need not know the
service layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from billing.adapters.stripe_api import Session
from billing.domain.plans import Plan
from contracts import billing as msg
from cortex_runtime.database import UnitOfWork


class CallCounts(Protocol):
    """The gateways' per-day API call counters (``billing.adapters.counters``)."""

    async def calls(self, tenant_id: str, days: list[date]) -> dict[date, int]: ...


class StripePort(Protocol):
    """Stripe's API (``billing.adapters.stripe_api``)."""

    async def create_customer(
        self, tenant_id: str, email: str, name: str, idempotency_key: str
    ) -> str: ...

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        tenant_id: str,
        tier: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> Session: ...

    async def create_portal_session(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> Session: ...

    async def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BillingDeps:
    """The unit of work, the plan table, the ports and the configuration."""

    uow: Callable[[], UnitOfWork]
    plans: Mapping[msg.PlanTier, Plan]
    counters: CallCounts
    # None: no Stripe key is configured, and checkout is off
    stripe: StripePort | None = None
    prices: Mapping[msg.PlanTier, str] = field(default_factory=dict)
    hold: timedelta = timedelta(hours=50)
    webhook_secret: str = ""
    success_url: str = ""
    cancel_url: str = ""
    portal_return_url: str = ""
    clock: Callable[[], datetime] = _utcnow

    def tier_of_price(self) -> dict[str, msg.PlanTier]:
        return {price: tier for tier, price in self.prices.items()}

    def month(self) -> date:
        return self.clock().astimezone(UTC).date().replace(day=1)
