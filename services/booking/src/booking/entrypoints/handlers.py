"""Every RPC and event the booking service serves, and the handler that answers it.

Handlers are ``(cmd, deps)`` and ``(event, deps, uow)`` (:mod:`cortex_runtime.handlers`);
``bootstrap`` registers this table with the service's :class:`BookingDeps`.
"""

from __future__ import annotations

from booking.service_layer import (
    availability,
    booking_requests,
    callers,
    lifecycle,
    policies,
    projection,
    rescheduling,
)
from booking.service_layer.deps import BookingDeps
from booking.settings import BookingSettings
from contracts import booking as msg
from contracts import booking_changes as changes
from contracts import gateway as gw
from contracts import identity as ident
from contracts import owners as owner_msg
from contracts import policies as policy_msg
from cortex_runtime.broker import Delivery
from cortex_runtime.handlers import Route, event, plain_event, rpc


def handlers(settings: BookingSettings) -> tuple[Route[BookingDeps], ...]:
    """The table. Only the hand-over of unanswered requests reads ``settings``: its
    redeliveries wait out the saga's participants and any database outage."""
    return (
        # the owners projection (identity's settings)
        event(ident.TENANT_CREATED, projection.on_tenant_created),
        event(ident.SETTINGS_CHANGED, projection.on_settings_changed),
        event(ident.TENANT_DELETED, projection.on_tenant_deleted),
        rpc(owner_msg.APPLY_OWNER_SETTINGS, projection.apply_owner_settings),
        rpc(owner_msg.OWNER_CALENDARS_CHANGED, projection.owner_calendars_changed),
        # availability
        rpc(msg.GET_AVAILABILITY, availability.get_availability),
        rpc(msg.GET_OWNER_AVAILABILITY, availability.get_owner_availability),
        rpc(msg.GET_PAGE, availability.get_page),
        # booking: the saga, and a request the gateway answered 202 without an outcome
        rpc(msg.CREATE_BOOKING, booking_requests.create_booking),
        # idempotent by booking id: no inbox needed. A hand-over is the only trace of a
        # request answered 202: it is retried through any database outage (never
        # dead-lettered for one), every 5 s at most, so its status URL answers soon after
        # the database is back
        plain_event(
            gw.BOOKING_UNANSWERED,
            booking_requests.settle_unanswered,
            ack_wait=max(60.0, 4 * settings.participant_timeout_seconds),
            delivery=Delivery(
                max_deliver=settings.consumer_max_deliver,
                outlast_outages=True,
                max_backoff_seconds=5.0,
            ),
        ),
        # the booking's life
        rpc(msg.GET_PUBLIC_BOOKING, lifecycle.get_public_booking),
        rpc(msg.GET_BOOKING, lifecycle.get_booking),
        rpc(msg.LIST_BOOKINGS, lifecycle.list_bookings),
        rpc(msg.CONFIRM_BOOKING, lifecycle.confirm_booking),
        rpc(msg.DECLINE_BOOKING, lifecycle.decline_booking),
        rpc(msg.CANCEL_BOOKING, lifecycle.cancel_booking),
        # changing a booking: the owner's reschedule, the attendee's manage link
        rpc(changes.RESCHEDULE_BOOKING, rescheduling.reschedule_booking),
        rpc(changes.GET_MANAGED_BOOKING, rescheduling.get_managed_booking),
        rpc(changes.RESCHEDULE_MANAGED_BOOKING, rescheduling.reschedule_managed_booking),
        rpc(changes.CANCEL_MANAGED_BOOKING, rescheduling.cancel_managed_booking),
        # callers and policies
        rpc(policy_msg.CREATE_CALLER, callers.create_caller),
        rpc(policy_msg.LIST_CALLERS, callers.list_callers),
        rpc(policy_msg.GET_CALLER, callers.get_caller),
        rpc(policy_msg.UPDATE_CALLER, callers.update_caller),
        rpc(policy_msg.UPSERT_CALLER, callers.upsert_caller),
        rpc(policy_msg.DELETE_CALLER, callers.delete_caller),
        rpc(policy_msg.CREATE_POLICY, policies.create_policy),
        rpc(policy_msg.LIST_POLICIES, policies.list_policies),
        rpc(policy_msg.GET_POLICY, policies.get_policy),
        rpc(policy_msg.UPDATE_POLICY, policies.update_policy),
        rpc(policy_msg.DELETE_POLICY, policies.delete_policy),
    )
