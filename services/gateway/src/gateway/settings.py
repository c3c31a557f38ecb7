from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cortex_runtime.settings import CortexSettings, secret_field, shared_field


class GatewaySettings(CortexSettings):
    """Settings of the gateway; variables are prefixed ``CORTEX_GATEWAY_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_GATEWAY_")

    host: str = Field(default="127.0.0.1", description="Interface to listen on")
    port: int = shared_field(8000, "CORTEX_GATEWAY_PORT", "HTTP port")
    public_url: str = Field(
        default="",
        description="Base URL clients reach the gateway at (for links); default: the request's",
    )
    mcp_allowed_hosts: str = Field(
        default="",
        description="Comma-separated Host header values /mcp accepts beside public_url's "
        "(DNS-rebinding protection; 'name:*' allows any port); 127.0.0.1 and localhost in "
        "development",
    )
    ready_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long /ready waits for each service's ping"
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted (413 above)"
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins allowed to call authenticated routes from a "
        "browser; public routes are open to all",
    )
    rate_availability_per_minute: int = Field(default=60, ge=1, description="Per client IP")
    rate_book_per_hour: int = Field(default=10, ge=1, description="Per client IP")
    rate_resolve_per_minute: int = Field(default=30, ge=1, description="Per client IP")
    rate_toon_per_minute: int = Field(default=60, ge=1, description="Per client IP")
    rate_ipv6_prefix: int = Field(
        default=64,
        ge=32,
        le=128,
        description="Per-IP limits count an IPv6 client by its network of this many bits "
        "(an IPv4 client by its address)",
    )
    oauth_binding_secret: SecretStr = secret_field(
        "cortex-development-oauth-binding-secret",
        "Signs the OAuth connection links and the cookies that bind a connection to the "
        "browser that opened its link; the same value on every gateway replica",
    )
    manage_link_secret: SecretStr = secret_field(
        "cortex-development-manage-link-secret",
        "Derives the attendees' manage-link tokens (HMAC of the booking id); the same value "
        "on every gateway replica; a new value invalidates every link given before",
    )
    trusted_proxies: str = Field(
        default="",
        description="CIDR networks of proxies whose X-Forwarded-For is believed (none by default)",
    )
    booking_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long POST /book waits before answering 202"
    )
    key_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a verified API key is trusted without asking identity",
    )
    key_usage_flush_seconds: float = Field(
        default=5.0, gt=0, description="How often last-used times are sent to identity"
    )
