"""Read-your-writes: an owner's change is in booking's view before the change is answered.

Booking answers availability and bookings from its projection of the owner's settings and
from free/busy answers it caches; both follow identity's and calendars' events, which arrive
milliseconds after the change was answered. So once a settings change, a calendar connection
or a calendar choice has committed, the gateway hands the result to booking (and settings to
calendars, whose free/busy places floating and all-day events in the owner's zone) and waits
for it to be applied before answering: the next availability or booking for that owner, through any
gateway and any booking replica, sees the change. Booking applies it by version (the event
that follows finds nothing newer), so a late or repeated hand-over never rolls anything back.

When booking cannot be reached the change has still happened: it is answered all the same
(logged), and booking catches up from the event as before; while booking is unreachable its
reads fail too, so nothing stale is served in between.
"""

from __future__ import annotations

import logging
from typing import Any

from contracts import calendars as cal
from contracts import identity as ident
from contracts import owners
from contracts.rpc import Rpc
from cortex_runtime.errors import ServiceError
from gateway.deps import Caller

log = logging.getLogger(__name__)


async def settings_changed(call: Caller, settings: ident.TenantSettings) -> ident.TenantSettings:
    """``settings`` (just committed by identity), once the projections hold them: calendars'
    (the owner's zone places floating and all-day events) first, then booking's (which also
    stops serving free/busy answers cached before a zone change)."""
    projections: tuple[Rpc[Any, Any], ...] = (
        cal.APPLY_OWNER_SETTINGS,
        owners.APPLY_OWNER_SETTINGS,
    )
    for rpc in projections:
        try:
            await call(rpc, settings=settings)
        except ServiceError as exc:
            log.warning("settings v%s not handed to %s: %s", settings.version, rpc.owner, exc)
    return settings


async def calendars_changed(call: Caller, tenant_id: str | None) -> None:
    """After a connection or a calendar choice of ``tenant_id`` changed."""
    if not tenant_id:
        return
    try:
        await call.for_tenant(tenant_id)(owners.OWNER_CALENDARS_CHANGED)
    except ServiceError as exc:
        log.warning("calendar change not handed to booking: %s", exc)
