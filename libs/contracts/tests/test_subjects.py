from __future__ import annotations

import pytest

from contracts import subjects
from contracts.envelope import Envelope
from contracts.registry import EVENTS, RPCS


def test_subject_scheme() -> None:
    assert subjects.command("booking", "create_booking") == "booking.v1.cmd.create_booking"
    assert subjects.event("identity", "settings_changed") == "identity.v1.evt.settings_changed"
    assert subjects.durable_name("booking", "identity.v1.evt.settings_changed") == (
        "booking__settings_changed"
    )
    assert subjects.durable_name("booking", "identity.v2.evt.settings_changed") == (
        "booking__settings_changed_v2"
    )
    with pytest.raises(ValueError):
        subjects.command("Booking", "x")
    with pytest.raises(ValueError):
        subjects.durable_name("booking", "identity.v1.cmd.ping")


def test_streams_capture_events_only() -> None:
    wildcard = subjects.events_wildcard("identity")
    assert wildcard == "identity.*.evt.>"
    assert not subjects.IDENTITY_PING.startswith("identity.v1.evt.")


def test_every_declared_subject_follows_the_scheme() -> None:
    for rpc in RPCS:
        owner, version, kind, _name = rpc.subject.split(".")
        assert (kind, version) == ("cmd", "v1") and owner in subjects.SERVICES
    for spec in EVENTS:
        owner, _version, kind, _name = spec.subject.split(".")
        assert kind == "evt" and owner in subjects.EVENT_OWNERS


def test_envelope_defaults_and_causation() -> None:
    first = Envelope(tenant_id="t1")
    assert first.correlation_id == first.message_id and first.causation_id is None
    second = Envelope(**first.caused())
    assert second.correlation_id == first.correlation_id
    assert second.causation_id == first.message_id
    assert second.tenant_id == "t1"
    assert second.message_id != first.message_id


def test_envelope_ignores_unknown_fields() -> None:
    parsed = Envelope.model_validate({"message_id": "m1", "added_in_a_later_version": 1})
    assert parsed.message_id == "m1"
