from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cortex_runtime.settings import ServiceSettings, secret_field


class CalendarsSettings(ServiceSettings):
    """Settings of the calendars service; variables are prefixed ``CORTEX_CALENDARS_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_CALENDARS_")

    encryption_keys: SecretStr = secret_field(
        "Y29ydGV4LWRldmVsb3BtZW50LWtleS0wMDAwMDAwMDA=",
        "Fernet keys (urlsafe base64, 32 bytes), comma separated; the first encrypts",
    )
    allowed_private_networks: str = Field(
        default="",
        description="CIDR networks a CalDAV server_url may resolve to despite being private "
        "(cortex up: loopback, for a local Radicale); empty in production",
    )
    denied_endpoints: str = Field(
        default="",
        description="network:port endpoints a CalDAV server_url may never reach, even on an "
        "allowed network, comma separated (cortex up: the ports of its own NATS, PostgreSQL "
        "and gateways on loopback)",
    )
    sync_interval_seconds: float = Field(default=300.0, gt=0)
    sync_horizon_days: int = Field(default=400, ge=1, le=1000)
    http_timeout_seconds: float = Field(default=15.0, gt=0)
    google_client_id: str = ""
    google_client_secret: SecretStr = SecretStr("")
    google_auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
    google_api_url: str = "https://www.googleapis.com/calendar/v3"
    microsoft_client_id: str = ""
    microsoft_client_secret: SecretStr = SecretStr("")
    microsoft_auth_url: str = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    microsoft_token_url: str = "https://login.microsoftonline.com/common/oauth2/v2.0/token"  # noqa: S105 (a URL)
    graph_api_url: str = "https://graph.microsoft.com/v1.0"
