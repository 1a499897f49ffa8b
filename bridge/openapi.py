"""The OpenAPI 3 document of the HTTP surface (placeholder until written out in full)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def openapi_document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "AI1NET gateway", "version": "1"}, "paths": {}}
