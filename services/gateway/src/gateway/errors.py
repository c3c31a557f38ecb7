"""Every error leaves the gateway as JSON ``{"error": "<sentence>", "code": "..."}``.

Some errors carry more for a client (an agent) to act on, beside ``error`` and ``code``
(:data:`PUBLIC_DETAILS`): a booking conflict names the clash (``conflict``) and offers the
next free slots of the same length (``next_slots``), from the service's error details; a 429
says how long to wait (``retry_after_seconds``, the same number as ``Retry-After``).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway.openapi import add_links

log = logging.getLogger(__name__)

STATUS_OF_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.PAYMENT_REQUIRED: 402,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}

_CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ErrorSlot(BaseModel):
    start: AwareDatetime
    end: AwareDatetime


class ErrorConflict(BaseModel):
    """What a requested slot clashes with."""

    start: AwareDatetime
    end: AwareDatetime
    summary: str | None = Field(
        description="The calendar event's summary as the owner's page shows it ('Busy' when "
        "it has none); null for another booking"
    )
    source: Literal["calendar", "booking"]


class ErrorBody(BaseModel):
    """The shape of every error response."""

    error: str
    code: str | None = None
    conflict: ErrorConflict | None = Field(
        default=None,
        description="409 slot_unavailable: what the slot clashes with, when it is known "
        "(times in the owner's zone)",
    )
    next_slots: list[ErrorSlot] | None = Field(
        default=None,
        description="409 slot_unavailable: the next free slots of the requested length "
        "after the requested start (up to 3, within 14 days and the owner's max advance), "
        "in the owner's zone; each is one availability shows and booking accepts now",
    )
    retry_after_seconds: int | None = Field(
        default=None, ge=1, description="429: seconds to wait before retrying (as Retry-After)"
    )


# the service error details a client sees (others stay inside: ids, deadlines, providers)
PUBLIC_DETAILS = ("conflict", "next_slots")


DESCRIBED = {
    400: "Invalid request",
    401: "Missing, malformed, unknown or revoked API key",
    402: "Plan limit reached",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Unsupported media type",
    429: "Rate limited",
    502: "An upstream provider failed",
    503: "A service or the message broker is unavailable",
    504: "A service did not answer in time",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route can answer, all with the JSON error shape.

    Errors every route of a kind can answer are added to the OpenAPI by
    :func:`install_openapi`: 400 where a request is validated, 413 and 415 where it has a
    body, 401 and 429 (daily call limit) where an API key is required.
    """
    return {s: {"model": ErrorBody, "description": DESCRIBED[s]} for s in (*statuses, 503, 504)}


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _error_entry(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or DESCRIBED[status],
        "content": {"application/json": {"schema": _ERROR_REF}},
    }


def documented_beside(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """:func:`documented` for a route whose success is not JSON (``response_class`` HTML or a
    redirect): its errors are still JSON, which ``model`` entries would document as the
    route's own media type."""
    return {s: _error_entry(s) for s in (*statuses, 503, 504)}


def install_openapi(app: FastAPI, daily_limit_exempt: tuple[str, ...] = ()) -> None:
    """The OpenAPI document as the gateway really answers.

    * FastAPI documents a 422 with its own validation shape; the gateway never sends one
      (validation errors are 400 with the JSON error shape), so 422 becomes 400.
    * Every operation with a request body may get 413 (too large) and 415 (not JSON) from
      the hardening middleware.
    * Every operation behind the API key may get 401, and 429 when the tenant's daily call
      limit is reached (except the paths in ``daily_limit_exempt``).
    * Links from the operations that answer an id to those that take it (gateway.openapi).
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = generate()
        for path, item in spec.get("paths", {}).items():
            for operation in item.values():
                responses: dict[str, Any] = operation.setdefault("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", _error_entry(400))
                if "requestBody" in operation:
                    responses.setdefault("400", _error_entry(400))
                    responses.setdefault("413", _error_entry(413))
                    responses.setdefault("415", _error_entry(415))
                if operation.get("security"):
                    responses.setdefault("401", _error_entry(401))
                    if not path.startswith(daily_limit_exempt):
                        responses.setdefault(
                            "429", _error_entry(429, "The daily API call limit is reached")
                        )
                operation["responses"] = dict(sorted(responses.items()))
        schemas = spec.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        if "ErrorBody" not in schemas:
            error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(error_schema.pop("$defs", {}))
            schemas["ErrorBody"] = error_schema
        add_links(spec)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> JSONResponse:
    """The one place an error body is made: ``error``, ``code``, the public ``details``, and
    for a 429 ``retry_after_seconds`` with the ``Retry-After`` header (one from the other)."""
    body: dict[str, Any] = {"error": message}
    if code:
        body["code"] = code
    for key in PUBLIC_DETAILS:
        if details and details.get(key) is not None:
            body[key] = details[key]
    if status == 429:
        headers = dict(headers or {})
        retry_after = retry_after_seconds(headers.get("Retry-After"), details)
        headers["Retry-After"] = str(retry_after)
        body["retry_after_seconds"] = retry_after
    return JSONResponse(body, status_code=status, headers=headers)


def retry_after_seconds(header: str | None, details: dict[str, Any] | None = None) -> int:
    """A 429's wait in whole seconds (at least 1): its Retry-After header, else the
    service's ``retry_after_seconds`` detail, else 1. Every door says it with this."""
    for value in (header, (details or {}).get("retry_after_seconds")):
        try:
            return max(1, math.ceil(float(value)))  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            continue
    return 1


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc) or "body"
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + "."


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _methods_of(request: Request) -> list[str]:
    """The methods some route answers on this path (for a 405's ``Allow``)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route matches {request.method} {request.url.path}."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
            allowed = _methods_of(request)
            if allowed:  # every route of the path, not only the first one the router tried
                headers["Allow"] = ", ".join(allowed)
        return error_response(
            exc.status_code, message, _CODE_OF_STATUS.get(exc.status_code), headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _describe_validation(exc), "invalid_request")

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        status = STATUS_OF_KIND.get(exc.kind, 500)
        if exc.code == "service_timeout":
            status = 504  # a service did not answer in time
        headers = None
        if status == 503:
            headers = {"Retry-After": "1"}
        elif status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(status, exc.reply.message, exc.code, headers, exc.reply.details)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "Internal error.", "internal_error")
