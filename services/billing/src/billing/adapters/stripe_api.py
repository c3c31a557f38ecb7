"""Stripe through its official SDK (``StripeClient``, async over httpx).

Every creating call carries an Idempotency-Key, so a retry never makes a second object.
Stripe's refusals and outages become ``upstream`` errors (502) with Stripe's sentence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import stripe
from stripe.params import CustomerCreateParams
from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Session:
    id: str
    url: str


def _upstream(exc: stripe.StripeError) -> ServiceError:
    message = exc.user_message or str(exc) or "no details"
    log.warning("Stripe refused a request", extra={"error": repr(exc)[:500]})
    return ServiceError(
        ErrorKind.UPSTREAM, "stripe_error", f"Stripe refused the request: {message[:300]}"
    )


class StripeApi:
    def __init__(self, api_key: str, api_base: str, timeout: float) -> None:
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")},
            http_client=stripe.HTTPXClient(timeout=timeout),
            max_network_retries=2,
        )

    async def create_customer(
        self, tenant_id: str, email: str, name: str, idempotency_key: str
    ) -> str:
        params: CustomerCreateParams = {"metadata": {"tenant_id": tenant_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        try:
            customer = await self._client.v1.customers.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise _upstream(exc) from exc
        return customer.id

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        tenant_id: str,
        tier: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> Session:
        metadata = {"tenant_id": tenant_id, "plan_tier": tier}
        params: CheckoutSessionParams = {
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": tenant_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise _upstream(exc) from exc
        if not session.url:
            raise ServiceError(ErrorKind.UPSTREAM, "stripe_error", "Stripe returned no URL.")
        return Session(session.id, session.url)

    async def create_portal_session(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> Session:
        params: PortalSessionParams = {
            "customer": customer_id,
            "return_url": return_url,
        }
        try:
            session = await self._client.v1.billing_portal.sessions.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise _upstream(exc) from exc
        return Session(session.id, session.url)

    async def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> None:
        """Cancel the subscription now (no proration, no final invoice: Stripe's defaults).

        Already cancelled or unknown to Stripe counts as done."""
        try:
            await self._client.v1.subscriptions.cancel_async(
                subscription_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing" or exc.http_status == 404:
                return
            try:
                current = await self._client.v1.subscriptions.retrieve_async(subscription_id)
            except stripe.StripeError:
                raise _upstream(exc) from exc
            if current.status not in ("canceled", "incomplete_expired"):
                raise _upstream(exc) from exc
        except stripe.StripeError as exc:
            raise _upstream(exc) from exc
