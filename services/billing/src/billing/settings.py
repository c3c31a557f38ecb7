from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contracts.billing import PlanTier
from cortex_runtime.settings import ServiceSettings, secret_field


class BillingSettings(ServiceSettings):
    """Settings of the billing service; variables are prefixed ``CORTEX_BILLING_``."""

    model_config = SettingsConfigDict(env_prefix="CORTEX_BILLING_")

    # --- plans and quota ---------------------------------------------------------------
    plan_overrides: dict[PlanTier, dict[str, int | None]] = Field(
        default_factory=dict,
        description=(
            "JSON: limits that replace the plan table's, e.g. "
            '{"starter": {"calls_per_day": 5000, "bookings_per_month_individual": 50}} '
            "(calls_per_day, bookings_per_month_individual, bookings_per_month_developer, "
            "calendars; null is unlimited)"
        ),
    )
    quota_hold_seconds: float = Field(
        default=50 * 3600.0,
        gt=0,
        description=(
            "How long a booking-quota reservation counts before it expires uncommitted, at "
            "least; a booking that needs longer asks for it with the reservation (a pending "
            "one: until past its expiry, CORTEX_BOOKING_PENDING_EXPIRY_HOURS), so the two "
            "settings are independent"
        ),
    )
    quota_sweep_seconds: float = Field(
        default=5.0, gt=0, description="How often expired reservations are given back"
    )

    # --- Stripe ------------------------------------------------------------------------
    stripe_api_key: SecretStr = Field(
        default=SecretStr(""),
        description="Stripe secret key (sk_live_... / sk_test_...); empty: checkout is off",
    )
    stripe_webhook_secret: SecretStr = secret_field(
        "whsec_cortex_development_only_secret",
        "Signing secret of the Stripe webhook endpoint (whsec_...), from Stripe's dashboard",
    )
    stripe_api_base: str = Field(
        default="https://api.stripe.com", description="Base address of the Stripe API"
    )
    stripe_timeout_seconds: float = Field(default=20.0, gt=0)
    stripe_price_pro: str = Field(default="", description="Stripe price id of the pro tier")
    stripe_price_growth: str = Field(default="", description="Stripe price id of the growth tier")
    stripe_price_scale: str = Field(default="", description="Stripe price id of the scale tier")
    checkout_success_url: str = Field(
        default="http://127.0.0.1:8000/billing/success?session_id={CHECKOUT_SESSION_ID}",
        description="Where Stripe Checkout sends the customer after paying",
    )
    checkout_cancel_url: str = Field(
        default="http://127.0.0.1:8000/billing/cancelled",
        description="Where Stripe Checkout sends the customer who gives up",
    )
    portal_return_url: str = Field(
        default="http://127.0.0.1:8000/billing",
        description="Where the Customer Portal's return link leads",
    )

    def stripe_prices(self) -> dict[PlanTier, str]:
        """Price id of each paid tier that has one configured."""
        prices = {
            PlanTier.PRO: self.stripe_price_pro,
            PlanTier.GROWTH: self.stripe_price_growth,
            PlanTier.SCALE: self.stripe_price_scale,
        }
        return {tier: price for tier, price in prices.items() if price}
