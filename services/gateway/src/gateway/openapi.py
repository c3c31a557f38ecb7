"""OpenAPI links: which answer gives the id (or slug, or cursor) that another operation takes.

A generated client, an agent reading the schema and a stateful fuzzer all learn from these
that the ``booking_id`` of ``POST /public/{slug}/book`` is what ``GET /api/v1/bookings/
{booking_id}`` wants, and so on. Every link is one row below; :func:`add_links` writes them
into the document FastAPI generates (``install_openapi`` calls it), naming each target by its
``operationId``, and refuses a row whose operation, status or parameter does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    source: str  # "METHOD /path" of the operation whose answer holds the value
    status: int
    target: str  # "METHOD /path" of the operation that takes it
    parameters: dict[str, str] = field(default_factory=dict)  # name -> runtime expression
    description: str = ""

    @property
    def name(self) -> str:
        method, path = self.target.split(" ", 1)
        words = [w.strip("{}") for w in path.split("/") if w and w not in ("api", "v1")]
        return method.lower() + "".join(w.replace("-", "_").title() for w in words).replace("_", "")


BOOKING = "$response.body#/booking_id"
_BOOKING_OPS = (
    "GET /api/v1/bookings/{booking_id}",
    "POST /api/v1/bookings/{booking_id}/confirm",
    "POST /api/v1/bookings/{booking_id}/decline",
    "POST /api/v1/bookings/{booking_id}/cancel",
)
_CALLER_OPS = ("GET", "PUT", "DELETE")
_POLICY_OPS = ("GET", "PUT", "DELETE")
_PAGE_OPS = ("GET /public/{slug}/availability", "POST /public/{slug}/book")
_CONNECTION_OPS = (
    ("PUT /api/v1/calendars/calendars/{calendar_id}",
     {"calendar_id": "$response.body#/calendars/0/id"}),
    ("DELETE /api/v1/calendars/{provider}", {"provider": "$response.body#/provider"}),
)  # fmt: skip

LINKS: tuple[Link, ...] = (
    # a booking made on a page: its status there, and the owner's operations on it
    Link("POST /public/{slug}/book", 201, "GET /public/{slug}/bookings/{booking_id}",
         {"slug": "$request.path.slug", "booking_id": BOOKING}, "The booking's status"),
    Link("POST /public/{slug}/book", 202, "GET /public/{slug}/bookings/{booking_id}",
         {"slug": "$request.path.slug", "booking_id": BOOKING}, "Poll until it is settled"),
    *(Link("POST /public/{slug}/book", 201, op, {"booking_id": BOOKING}) for op in _BOOKING_OPS),
    *(Link("GET /api/v1/bookings/{booking_id}", 200, op, {"booking_id": BOOKING})
      for op in _BOOKING_OPS[1:]),
    Link("GET /api/v1/bookings", 200, "GET /api/v1/bookings",
         {"cursor": "$response.body#/next_cursor"}, "The next page"),
    Link("GET /api/v1/bookings", 200, "GET /api/v1/bookings/{booking_id}",
         {"booking_id": "$response.body#/bookings/0/booking_id"}, "The first booking listed"),
    Link("GET /api/v1/activity", 200, "GET /api/v1/activity",
         {"cursor": "$response.body#/next_cursor"}, "The next page"),
    # callers and policies: created, then read, changed and deleted by id
    *(Link("POST /api/v1/callers", 201, f"{m} /api/v1/callers/{{caller_id}}",
           {"caller_id": "$response.body#/id"}) for m in _CALLER_OPS),
    *(Link("PUT /api/v1/callers/{caller_id}", 200, f"{m} /api/v1/callers/{{caller_id}}",
           {"caller_id": "$response.body#/id"}) for m in ("GET", "DELETE")),
    *(Link("POST /api/v1/policies", 201, f"{m} /api/v1/policies/{{policy_id}}",
           {"policy_id": "$response.body#/id"}) for m in _POLICY_OPS),
    *(Link("PUT /api/v1/policies/{policy_id}", 200, f"{m} /api/v1/policies/{{policy_id}}",
           {"policy_id": "$response.body#/id"}) for m in ("GET", "DELETE")),
    # an API key: revoked by its id
    Link("POST /api/v1/keys", 201, "DELETE /api/v1/keys/{key_id}", {"key_id": "$response.body#/id"},
         "Revoke the key just created"),
    # a calendar connection: choose its calendars, disconnect it
    *(Link("POST /api/v1/calendars/caldav", 201, op, params) for op, params in _CONNECTION_OPS),
    *(Link("GET /api/v1/calendars/{provider}/callback", 200, op, params)
      for op, params in _CONNECTION_OPS),
    # the slug of the tenant's page: its availability and booking
    *(Link("PUT /api/v1/settings/slug", 200, op, {"slug": "$response.body#/slug"})
      for op in _PAGE_OPS),
    *(Link("GET /api/v1/settings", 200, op, {"slug": "$response.body#/slug"}) for op in _PAGE_OPS),
    *(Link("GET /resolve", 200, op, {"slug": "$response.body#/slug"}) for op in _PAGE_OPS),
)  # fmt: skip


def _operation(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    method, path = ref.split(" ", 1)
    try:
        operation: dict[str, Any] = spec["paths"][path][method.lower()]
    except KeyError:
        raise ValueError(f"OpenAPI link: no operation {ref}") from None
    return operation


def add_links(spec: dict[str, Any], links: tuple[Link, ...] = LINKS) -> None:
    """Write ``links`` into the operations' responses of ``spec`` (in place)."""
    for link in links:
        source, target = _operation(spec, link.source), _operation(spec, link.target)
        response = source["responses"].get(str(link.status))
        if response is None:
            raise ValueError(f"OpenAPI link: {link.source} documents no {link.status}")
        names = {p["name"] for p in target.get("parameters", [])}
        unknown = set(link.parameters) - names
        if unknown:
            raise ValueError(f"OpenAPI link: {link.target} has no parameter {sorted(unknown)}")
        entry: dict[str, Any] = {"operationId": target["operationId"]}
        if link.parameters:
            entry["parameters"] = dict(link.parameters)
        if link.description:
            entry["description"] = link.description
        response.setdefault("links", {})[link.name] = entry
