"""The tenant dashboard, composed from billing, calendars and identity in parallel.

Each part has its own deadline; a part whose service is down or late is left empty (its
keys stay, with null or empty values) and named in ``unavailable``, so the others still
answer.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway import capabilities
from gateway.capabilities import (
    ActivitySummary,
    CalendarSummary,
    DashboardSummary,
    PlanSummary,
)
from gateway.deps import TenantCaller
from gateway.errors import documented

__all__ = ["ActivitySummary", "CalendarSummary", "DashboardSummary", "PlanSummary"]

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])


@router.get(
    "/summary",
    response_model=DashboardSummary,
    responses=documented(401),
)
async def summary(call: TenantCaller) -> JSONResponse:
    """Plan, limits and usage; connected calendars; the ten latest activity items."""
    body = await capabilities.dashboard(call)
    # the seed's shape exactly; "unavailable" only when a part is missing
    exclude = None if body.unavailable else {"unavailable"}
    return JSONResponse(body.model_dump(mode="json", exclude=exclude))
