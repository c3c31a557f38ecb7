from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from cortex_runtime.settings import ServiceSettings, secret_field


class IdentitySettings(ServiceSettings):
    """Settings of the identity service; variables are prefixed ``CORTEX_IDENTITY_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_IDENTITY_")

    clerk_webhook_secret: SecretStr = secret_field(
        "whsec_Y29ydGV4LWRldmVsb3BtZW50LW9ubHktc2VjcmV0",
        "Signing secret of the Clerk webhook endpoint (whsec_...), from Clerk's dashboard",
    )
