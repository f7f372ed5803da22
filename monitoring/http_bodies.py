"""JSON request bodies and error responses shared by the API modules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ValidationError

from .state import SETTINGS


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body (decompressed by aiohttp) within `limit` bytes and the settings' request_timeout:
    413 over the limit, 408 for a client too slow to send it."""
    try:
        async with asyncio.timeout(request.app[SETTINGS].request_timeout):
            body = await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="the request body took too long to arrive",
                                     headers={"Connection": "close"}) from None
    except (RequestPayloadError, HttpProcessingError):  # e.g. a corrupt gzip body; the rest can't be framed
        raise web.HTTPBadRequest(text="the request body could not be read (bad encoding or framing)",
                                 headers={"Connection": "close"}) from None
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`; 400 for anything that isn't one (bad UTF-8, nesting too deep, ...)."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise web.HTTPBadRequest(text=f"body is not valid JSON: {error}") from None
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(text="body is not valid JSON: not UTF-8") from None
    except ValueError:  # e.g. an integer over the interpreter's digit limit
        raise web.HTTPBadRequest(text="body is not valid JSON: a number is too long") from None
    except RecursionError:
        raise web.HTTPBadRequest(text="body is not valid JSON: nested too deeply") from None


async def read_model(request: web.Request, model: type[BaseModel]) -> Any:
    """The JSON body validated by `model`; 413 over max_request_bytes, 400 not JSON, 422 invalid."""
    raw = parse_json(await read_body(request, request.app[SETTINGS].max_request_bytes))
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [f"{'.'.join(str(part) for part in detail['loc']) or 'body'}: {detail['msg']}"
                    for detail in error.errors(include_url=False)]
        raise web.HTTPUnprocessableEntity(text="; ".join(problems)) from None
