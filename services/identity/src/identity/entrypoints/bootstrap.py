"""The one place where the identity service is wired together."""

from __future__ import annotations

from contracts import subjects
from cortex_runtime.service import ServiceRuntime

from identity.settings import IdentitySettings


def bootstrap(settings: IdentitySettings) -> ServiceRuntime:
    return ServiceRuntime(subjects.IDENTITY, settings)
