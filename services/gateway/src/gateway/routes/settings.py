from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from contracts import formats
from contracts import identity as msg
from gateway import capabilities
from gateway.capabilities import Settings
from gateway.deps import TenantCaller
from gateway.errors import documented
from gateway.params import schema_enum

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


class SlugBody(BaseModel):
    slug: str = Field(
        max_length=200,
        examples=["my-scheduling-page"],
        json_schema_extra={
            "pattern": formats.SLUG_PATTERN,
            "minLength": formats.SLUG_MIN,
            "maxLength": formats.SLUG_MAX,
        },
    )


class OpenSchedulingBody(BaseModel):
    enabled: bool


class UserTypeBody(BaseModel):
    user_type: str = Field(
        max_length=40, examples=["developer"], json_schema_extra=schema_enum(msg.UserType)
    )


class TimezoneBody(BaseModel):
    timezone: str = Field(
        max_length=100,
        examples=["Europe/Berlin"],
        json_schema_extra=schema_enum(formats.time_zones()),
    )


class WorkingHoursBody(BaseModel):
    working_hours: dict[str, list[msg.WorkingInterval]] = Field(
        examples=[
            {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]}
        ],
        json_schema_extra={"propertyNames": schema_enum(msg.WEEKDAYS)},
    )


class DisplayNameBody(BaseModel):
    display_name: str = Field(
        max_length=400,
        examples=["Alice Smith"],
        json_schema_extra={"minLength": 1, "pattern": formats.VISIBLE_TEXT},
    )


async def _update(call: TenantCaller, **change: Any) -> Settings:
    return await capabilities.update_settings(call, **change)


ERRORS = documented(400, 401)


@router.get("", response_model=Settings, responses=documented(401))
async def get_settings(call: TenantCaller) -> Settings:
    return await capabilities.get_settings(call)


@router.put("/slug", response_model=Settings, responses=documented(400, 401, 409))
async def put_slug(body: SlugBody, call: TenantCaller) -> Settings:
    """Lowercase letters, digits and hyphens, 3-63 characters; reserved words refused."""
    return await _update(call, slug=body.slug)


@router.put("/open-scheduling", response_model=Settings, responses=ERRORS)
async def put_open_scheduling(body: OpenSchedulingBody, call: TenantCaller) -> Settings:
    return await _update(call, open_scheduling=body.enabled)


@router.put("/booking-rules", response_model=Settings, responses=ERRORS)
async def put_booking_rules(body: msg.BookingRulesPatch, call: TenantCaller) -> Settings:
    """Rules left out keep their current values."""
    return await _update(call, booking_rules=body)


@router.put("/user-type", response_model=Settings, responses=ERRORS)
async def put_user_type(body: UserTypeBody, call: TenantCaller) -> Settings:
    """``individual`` or ``developer``."""
    return await _update(call, user_type=body.user_type)


@router.put("/timezone", response_model=Settings, responses=ERRORS)
async def put_timezone(body: TimezoneBody, call: TenantCaller) -> Settings:
    """An IANA time zone name."""
    return await _update(call, timezone=body.timezone)


@router.put("/working-hours", response_model=Settings, responses=ERRORS)
async def put_working_hours(body: WorkingHoursBody, call: TenantCaller) -> Settings:
    """Per weekday (mon..sun), local HH:MM intervals; an interval may cross midnight."""
    return await _update(call, working_hours=body.working_hours)


@router.put("/display-name", response_model=Settings, responses=ERRORS)
async def put_display_name(body: DisplayNameBody, call: TenantCaller) -> Settings:
    return await _update(call, display_name=body.display_name)
