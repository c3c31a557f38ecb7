"""Usage: a tenant's API calls and bookings per day of its billing period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billing.adapters import quota, tenants
from billing.domain.plans import billing_period
from billing.service_layer.deps import BillingDeps
from contracts import billing as msg
from cortex_runtime.errors import require_tenant


async def get_daily_usage(cmd: msg.GetDailyUsage, deps: BillingDeps) -> msg.DailyUsage:
    tenant_id = require_tenant(cmd)
    now = deps.clock()
    today = now.astimezone(UTC).date()
    async with deps.uow() as uow:
        tenant = await tenants.get(uow, tenant_id)
        period = billing_period(
            now,
            tenant.period_start if tenant is not None else None,
            tenant.period_end if tenant is not None else None,
        )
        start = datetime.combine(period.start, datetime.min.time(), UTC)
        end = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), UTC)
        bookings = await quota.committed_per_day(uow, tenant_id, start, end)
    days = period.days_until(today)
    calls = await deps.counters.calls(tenant_id, days)
    return msg.DailyUsage(
        **cmd.caused(),
        period_start=period.start,
        period_end=period.end,
        days=[
            msg.DayUsage(date=d, api_calls=calls.get(d, 0), bookings=bookings.get(d, 0))
            for d in days
        ],
        calls_today=calls.get(today, 0),
    )
