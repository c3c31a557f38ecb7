"""A command that acts for a tenant and names none is refused before any database work:
``unauthorized``, ``tenant_required`` (the runtime's one answer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from contracts import identity as msg
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError
from identity.service_layer import activity, api_keys, tenant_settings
from identity.service_layer.deps import IdentityDeps


def _no_database() -> UnitOfWork:
    raise AssertionError("a tenant-less command reached the database")


DEPS = IdentityDeps(uow=_no_database, reader=_no_database, clerk_webhook_secret="unused")

CASES: list[tuple[Callable[[Any, IdentityDeps], Awaitable[Any]], Message]] = [
    (api_keys.create_api_key, msg.CreateApiKey(name="ci")),
    (api_keys.list_api_keys, msg.ListApiKeys()),
    (api_keys.revoke_api_key, msg.RevokeApiKey(key_id="key_0123456789abcdef0123")),
    (tenant_settings.get_settings, msg.GetSettings()),
    (tenant_settings.update_settings, msg.UpdateSettings(open_scheduling=True)),
    (activity.list_activity, msg.ListActivity()),
]


@pytest.mark.parametrize(("handler", "command"), CASES, ids=lambda c: getattr(c, "__name__", ""))
@pytest.mark.parametrize("tenant_id", [None, ""])
async def test_a_tenant_scoped_command_without_a_tenant_is_refused(
    handler: Callable[[Any, IdentityDeps], Awaitable[Any]],
    command: Message,
    tenant_id: str | None,
) -> None:
    with pytest.raises(ServiceError) as refused:
        await handler(command.model_copy(update={"tenant_id": tenant_id}), DEPS)
    assert (refused.value.kind, refused.value.code) == (ErrorKind.UNAUTHORIZED, "tenant_required")
