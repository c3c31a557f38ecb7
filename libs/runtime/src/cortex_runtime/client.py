"""Typed request/reply calls: the caller half of a :class:`~contracts.rpc.Rpc`."""

from __future__ import annotations

from typing import TypeVar

import nats.errors
from faststream.nats import NatsBroker

from contracts.envelope import Message
from contracts.rpc import STATUS_ERROR, STATUS_HEADER, Rpc, RpcFailure
from cortex_runtime.broker import is_connected
from cortex_runtime.errors import ServiceError, ServiceUnavailable

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT", bound=Message)


class RpcClient:
    def __init__(self, broker: NatsBroker, timeout: float = 5.0) -> None:
        self._broker = broker
        self._timeout = timeout

    async def call(self, rpc: Rpc[ReqT, RepT], request: ReqT, timeout: float | None = None) -> RepT:
        """Send ``request`` and return the typed reply, or raise the service's error.

        Raises :class:`ServiceUnavailable` when nobody answers in time, no replica is
        subscribed, or NATS cannot be reached; :class:`ServiceError` for the service's
        own error replies.
        """
        owner = rpc.owner
        if not is_connected(self._broker):
            raise ServiceUnavailable(
                "messaging_unavailable", "The message broker cannot be reached."
            )
        try:
            response = await self._broker.request(
                request.model_dump(mode="json"), rpc.subject, timeout=timeout or self._timeout
            )
        except nats.errors.NoRespondersError as exc:
            raise ServiceUnavailable(
                "service_unavailable", f"The {owner} service is not running."
            ) from exc
        except TimeoutError as exc:
            raise ServiceUnavailable(
                "service_timeout", f"The {owner} service did not answer in time."
            ) from exc
        except (nats.errors.Error, OSError) as exc:
            raise ServiceUnavailable(
                "messaging_unavailable", "The message broker cannot be reached."
            ) from exc
        if (response.headers or {}).get(STATUS_HEADER) == STATUS_ERROR:
            raise ServiceError.from_reply(RpcFailure.model_validate_json(response.body).error)
        return rpc.reply.model_validate_json(response.body)
