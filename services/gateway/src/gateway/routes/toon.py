from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway import toon
from gateway.errors import documented
from gateway.limits import limited

router = APIRouter(prefix="/api/v1/toon", tags=["toon"])


class EncodeIn(BaseModel):
    json_value: Any = Field(alias="json", description="Any JSON value")


class EncodeOut(BaseModel):
    toon: str
    json_tokens: int = Field(description="Tokens of the compact JSON (cl100k_base)")
    json_pretty_tokens: int = Field(description="Tokens of the JSON indented by 2")
    toon_tokens: int
    savings: float = Field(description="Share of the compact JSON's tokens saved, 0.0-1.0")


@router.post(
    "/encode",
    response_model=EncodeOut,
    responses=documented(400, 413, 415, 429),
    dependencies=[Depends(limited("toon"))],
)
async def encode(body: EncodeIn) -> EncodeOut:
    """Convert JSON to TOON (spec v3); ``toon_format.decode`` gives the input back.

    Text that is not Unicode (an unpaired surrogate escape such as ``"\\ud800"``) and
    numbers JSON cannot hold (``NaN``, ``Infinity``, overflowing ones such as ``1e400``)
    are a 400: neither would come back as it was sent.
    """
    value = body.json_value
    try:
        compact_json = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        compact_json.encode("utf-8")
    except ValueError as exc:  # UnicodeEncodeError is a ValueError too
        message = (
            "The JSON holds text that is not valid Unicode (an unpaired surrogate)."
            if isinstance(exc, UnicodeEncodeError)
            else "The JSON holds a number that is not finite (NaN, Infinity or too large)."
        )
        raise ServiceError(ErrorKind.INVALID, "invalid_json", message) from exc
    text = toon.encode(value)
    compact = toon.count_tokens(compact_json)
    pretty = toon.count_tokens(json.dumps(value, indent=2, ensure_ascii=False))
    tokens = toon.count_tokens(text)
    savings = round(1 - tokens / compact, 4) if compact else 0.0
    return EncodeOut(
        toon=text,
        json_tokens=compact,
        json_pretty_tokens=pretty,
        toon_tokens=tokens,
        savings=savings,
    )
