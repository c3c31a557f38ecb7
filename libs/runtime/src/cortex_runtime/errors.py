"""Failures a handler reports to its caller, carried as an :class:`ErrorReply`."""

from __future__ import annotations

from typing import Any, Protocol

from contracts.rpc import ErrorKind, ErrorReply


class ServiceError(Exception):
    """A failure the caller should see: its kind, a machine code and a human sentence."""

    def __init__(
        self, kind: ErrorKind, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.reply = ErrorReply(kind=kind, code=code, message=message, details=details or {})

    @classmethod
    def from_reply(cls, reply: ErrorReply) -> ServiceError:
        return cls(reply.kind, reply.code, reply.message, dict(reply.details))

    @property
    def kind(self) -> ErrorKind:
        return self.reply.kind

    @property
    def code(self) -> str:
        return self.reply.code


class ServiceUnavailable(ServiceError):
    """The callee did not answer (no responders, timeout or no connection)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(ErrorKind.UNAVAILABLE, code, message)


# --- the tenant a request acts for -----------------------------------------------------------


class Addressed(Protocol):
    """Anything that names the tenant it acts for: every message's envelope does."""

    @property
    def tenant_id(self) -> str | None: ...


def tenant_required() -> ServiceError:
    """The one answer to a request that names no tenant: ``unauthorized`` (the tenant is the
    caller's credential, which the gateway sets from a verified key), ``tenant_required``."""
    return ServiceError(ErrorKind.UNAUTHORIZED, "tenant_required", "The request names no tenant.")


def require_tenant(message: Addressed) -> str:
    """The tenant id ``message`` acts for; :func:`tenant_required` when it names none (a
    missing or empty ``tenant_id``)."""
    tenant_id = message.tenant_id
    if not tenant_id:
        raise tenant_required()
    return tenant_id
