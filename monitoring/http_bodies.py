"""JSON request bodies and error responses shared by the API modules."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from .state import SETTINGS


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def read_model(request: web.Request, model: type[BaseModel]) -> Any:
    """The JSON body validated by `model`; 413 over max_request_bytes, 400 not JSON, 422 invalid."""
    limit = request.app[SETTINGS].max_request_bytes
    body = await request.read()
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    try:
        raw = json.loads(body)
    except json.JSONDecodeError as error:
        raise web.HTTPBadRequest(text=f"body is not valid JSON: {error}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [f"{'.'.join(str(part) for part in detail['loc']) or 'body'}: {detail['msg']}"
                    for detail in error.errors(include_url=False)]
        raise web.HTTPUnprocessableEntity(text="; ".join(problems)) from None
