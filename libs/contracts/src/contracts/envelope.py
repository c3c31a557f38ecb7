"""The envelope every message carries, commands, replies and events alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator

CURRENT_SCHEMA_VERSION = 1
_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


def new_message_id() -> str:
    return uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Tracing and routing fields present on every message.

    ``correlation_id`` ties together everything caused by one outside request;
    ``causation_id`` names the message that directly caused this one.
    Consumers ignore fields they do not know, so additions are not breaking.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: str = Field(default_factory=new_message_id, pattern=_ID_PATTERN)
    correlation_id: str = Field(default="", pattern=r"^([A-Za-z0-9._:-]{1,128})?$")
    causation_id: str | None = Field(default=None, pattern=_ID_PATTERN)
    occurred_at: datetime = Field(default_factory=utcnow)
    tenant_id: str | None = Field(default=None, max_length=64)
    schema_version: int = Field(default=CURRENT_SCHEMA_VERSION, ge=1)

    @model_validator(mode="after")
    def _correlate_to_self(self) -> Self:
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.message_id)
        return self

    def caused(self, **trace: Any) -> dict[str, Any]:
        """Envelope fields for a message caused by this one (same correlation)."""
        return {
            "correlation_id": self.correlation_id,
            "causation_id": self.message_id,
            "tenant_id": self.tenant_id,
            **trace,
        }


class Message(Envelope):
    """Base class of every command, reply and event body."""
