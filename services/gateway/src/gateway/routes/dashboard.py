"""The tenant dashboard, composed from billing, calendars and identity in parallel.

Each part has its own deadline; a part whose service is down or late is left empty (its
keys stay, with null or empty values) and named in ``unavailable``, so the others still
answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from contracts import billing, calendars, identity
from contracts.calendars import Provider
from cortex_runtime.errors import ServiceError
from gateway.deps import TenantCaller
from gateway.errors import documented

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])

PART_TIMEOUT_SECONDS = 2.5
RECENT_ACTIVITY = 10

T = TypeVar("T")


class PlanSummary(BaseModel):
    tier: billing.PlanTier | None
    user_type: identity.UserType | None
    calendars_connected: int | None
    calendars_limit: int | None
    bookings_used: int | None
    bookings_limit: int | None
    calls_today: int | None
    calls_daily_limit: int | None


class CalendarSummary(BaseModel):
    provider: Provider
    email: str
    calendar_count: int


class ActivitySummary(BaseModel):
    id: str
    type: str
    summary: str
    occurred_at: datetime
    ids: dict[str, str]


class DashboardSummary(BaseModel):
    plan: PlanSummary
    calendars: list[CalendarSummary]
    recent_activity: list[ActivitySummary]
    unavailable: list[str] = Field(
        default_factory=list,
        description="Parts whose service did not answer in time (present only then): "
        "billing (plan and usage), calendars, identity (activity)",
    )


async def _part(name: str, call: Awaitable[T]) -> T | None:
    try:
        return await asyncio.wait_for(call, PART_TIMEOUT_SECONDS)
    except (ServiceError, TimeoutError) as exc:
        reason = exc.reply.message if isinstance(exc, ServiceError) else "timed out"
        log.warning("dashboard part unavailable", extra={"part": name, "error": reason})
        return None


@router.get(
    "/summary",
    response_model=DashboardSummary,
    responses=documented(401),
)
async def summary(call: TenantCaller) -> JSONResponse:
    """Plan, limits and usage; connected calendars; the ten latest activity items."""
    plan, connections, activity = await asyncio.gather(
        _part("billing", call(billing.GET_PLAN)),
        _part("calendars", call(calendars.LIST_CONNECTIONS)),
        _part("identity", call(identity.LIST_ACTIVITY, limit=RECENT_ACTIVITY)),
    )
    unavailable = [
        name
        for name, part in (("billing", plan), ("calendars", connections), ("identity", activity))
        if part is None
    ]
    listed = connections.connections if connections is not None else []
    body = DashboardSummary(
        plan=PlanSummary(
            tier=plan.tier if plan else None,
            user_type=plan.user_type if plan else None,
            calendars_connected=len(listed) if connections is not None else None,
            calendars_limit=plan.calendars_limit if plan else None,
            bookings_used=plan.bookings_used if plan else None,
            bookings_limit=plan.bookings_limit if plan else None,
            calls_today=plan.calls_today if plan else None,
            calls_daily_limit=plan.calls_daily_limit if plan else None,
        ),
        calendars=[
            CalendarSummary(provider=c.provider, email=c.email, calendar_count=c.calendar_count)
            for c in listed
        ],
        recent_activity=[
            ActivitySummary(**item.model_dump()) for item in (activity.items if activity else [])
        ],
        unavailable=unavailable,
    )
    # the seed's shape exactly; "unavailable" only when a part is missing
    exclude = None if unavailable else {"unavailable"}
    return JSONResponse(body.model_dump(mode="json", exclude=exclude))
