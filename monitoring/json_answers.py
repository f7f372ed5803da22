"""JSON answers that every JSON parser reads: non-finite numbers as strings.

Agents may send NaN and +-Inf (the Prometheus text format has them), and they reach values the API
shows (a CPU reading, an alert's value, a report's peak). JSON has no such numbers, and Python's
json writes them bare (`NaN`, `Infinity`), which JSON.parse rejects. As Prometheus' HTTP API does,
they are written as the strings "NaN", "+Inf" and "-Inf"; `allow_nan=False` guards that nothing
non-finite is ever written bare.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web


def non_finite_text(value: float) -> str:
    """How a non-finite float is written: "NaN", "+Inf" or "-Inf"."""
    return "NaN" if math.isnan(value) else "+Inf" if value > 0 else "-Inf"


def dumps(document: Any, **options: Any) -> str:
    """json.dumps with non-finite floats written as strings (the common case, all finite, costs one pass)."""
    try:
        return json.dumps(document, allow_nan=False, **options)
    except ValueError:  # "Out of range float values are not JSON compliant": map them, then write again
        return json.dumps(_finite(document), allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else non_finite_text(value)
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def json_answer(document: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """web.json_response through `dumps`."""
    return web.json_response(document, status=status, headers=headers, dumps=dumps)
