"""Failures a handler reports to its caller, carried as an :class:`ErrorReply`."""

from __future__ import annotations

from typing import Any

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
