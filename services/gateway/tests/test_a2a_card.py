"""The A2A door's pure parts: the page's agent card as a2a-sdk reads it, the skill a
message asks for, the params the methods take."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from a2a.client.card_resolver import parse_agent_card
from a2a.compat.v0_3 import types as v03
from a2a.types import AgentCard, Message, Part, Role
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct, Value
from pydantic import ValidationError

from gateway import a2a_pages

V03_FIELDS = ("url", "protocolVersion", "preferredTransport", "additionalInterfaces")


def test_the_card_is_an_a2a_sdk_agent_card_pointing_at_the_page() -> None:
    served = a2a_pages.card_json("https://cortex.example/", "alice")
    # what a stock client does with it (the card resolver)
    card = parse_agent_card(copy.deepcopy(served))
    validate_proto_required_fields(card)  # every REQUIRED field of the 1.0 card is set
    endpoint = "https://cortex.example/public/alice/a2a"
    assert [(i.url, i.protocol_binding, i.protocol_version) for i in card.supported_interfaces] == [
        (endpoint, "JSONRPC", "1.0"),
        (endpoint, "JSONRPC", "0.3"),
    ]
    assert [s.id for s in card.skills] == ["query_availability", "book_slot"]
    assert not card.capabilities.streaming
    # the 1.0 fields alone parse strictly (no unknown field), the v0.3 ones are v0.3's card
    strict = ParseDict({k: v for k, v in served.items() if k not in V03_FIELDS}, AgentCard())
    assert strict == card
    legacy = v03.AgentCard.model_validate(served)
    assert legacy.url == endpoint
    assert [s.id for s in legacy.skills] == ["query_availability", "book_slot"]


def _message(data: Any = None, metadata: dict[str, Any] | None = None, text: str = "") -> Message:
    parts = []
    if text:
        parts.append(Part(text=text))
    if data is not None:
        value = Value()
        ParseDict(data, value)
        parts.append(Part(data=value))
    message = Message(message_id="m", role=Role.ROLE_USER, parts=parts)
    if metadata is not None:
        meta = Struct()
        meta.update(metadata)
        message.metadata.CopyFrom(meta)
    return message


@pytest.mark.parametrize(
    ("message", "skill", "arguments"),
    [
        (
            _message({"skill": "query_availability", "date": "2026-03-10"}),
            "query_availability",
            {"date": "2026-03-10"},
        ),
        (
            _message({"skill": "book_slot", "arguments": {"title": "x"}}),
            "book_slot",
            {"title": "x"},
        ),
        (
            _message({"date": "2026-03-10"}, {"skill": "query_availability"}, text="hi"),
            "query_availability",
            {"date": "2026-03-10"},
        ),
        (_message(text="book me something"), None, None),
        (_message({"skill": 7}), None, {}),
    ],
)
def test_the_skill_and_arguments_of_a_message(
    message: Message, skill: str | None, arguments: Any
) -> None:
    assert a2a_pages.skill_call(message) == (skill, arguments)


def test_params_are_refused_naming_the_param() -> None:
    with pytest.raises(ValidationError) as refused:
        a2a_pages.AvailabilityParams.model_validate({"date": "2026-03-10", "duration": 2})
    error = a2a_pages._invalid_params(refused.value)
    assert error.code == -32602
    assert error.data is not None and error.data["param"] == "duration"
    # JSON numbers through a protobuf Value are doubles: 30.0 is still 30 minutes
    assert (
        a2a_pages.AvailabilityParams.model_validate(
            {"date": "2026-03-10", "duration": 30.0}
        ).duration
        == 30
    )
    with pytest.raises(ValidationError):
        a2a_pages.BookSlotParams.model_validate(
            {
                "start": "2026-03-10T09:00:00Z",
                "end": "2026-03-10T09:30:00Z",
                "title": "t",
                "attendee_email": "a@example.org",
                "attendee": "typo",
            }
        )
