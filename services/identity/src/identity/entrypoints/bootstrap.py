"""The one place where the identity service is wired together."""

from __future__ import annotations

from contracts import subjects
from cortex_runtime.service import ServiceRuntime
from identity.entrypoints.handlers import HANDLERS
from identity.service_layer.deps import IdentityDeps
from identity.settings import IdentitySettings


def bootstrap(settings: IdentitySettings) -> ServiceRuntime:
    runtime = ServiceRuntime(subjects.IDENTITY, settings)
    deps = IdentityDeps(
        uow=runtime.uow,
        reader=runtime.reader,
        clerk_webhook_secret=settings.clerk_webhook_secret.get_secret_value(),
    )
    runtime.register(HANDLERS, deps)
    return runtime
