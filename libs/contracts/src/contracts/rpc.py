"""Typed request/reply declarations, so the gateway and a service cannot disagree.

On the wire a success is the reply model's JSON; a failure is an :class:`RpcFailure`
and carries the header ``Cortex-Status: error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import Message

STATUS_HEADER: Final = "Cortex-Status"
STATUS_ERROR: Final = "error"


class ErrorKind(StrEnum):
    """What kind of failure an error reply is; the gateway maps each to one HTTP status."""

    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    PAYMENT_REQUIRED = "payment_required"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    UPSTREAM = "upstream"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class ErrorReply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: ErrorKind
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    message: str = Field(max_length=2000, description="A human sentence, safe to show.")
    details: dict[str, Any] = Field(default_factory=dict)


class RpcFailure(Message):
    error: ErrorReply


ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT", bound=Message)


@dataclass(frozen=True, slots=True)
class Rpc(Generic[ReqT, RepT]):
    """One request/reply pair on one command subject."""

    subject: str
    request: type[ReqT]
    reply: type[RepT]
    summary: str

    @property
    def owner(self) -> str:
        return self.subject.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class EventSpec(Generic[RepT]):
    """One event type on one event subject, in its owner's stream."""

    subject: str
    model: type[RepT]
    summary: str

    @property
    def owner(self) -> str:
        return self.subject.split(".", 1)[0]
