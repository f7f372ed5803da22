"""HTTP API of the tracer: OTLP/HTTP ingestion at /v1/traces, a JSON span API for agents without
OpenTelemetry, and trace queries under /api/v1/traces."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from ..http_bodies import read_model
from ..state import ANALYST, SETTINGS, TRACER
from .analyst import AnalystBusy
from .spans import STATUS_ERROR, STATUS_OK, STATUS_UNSET, TraceLimitError
from .otlp import JSON, OtlpError, decode_request, encode_response, spans_of
from .traceparent import format_traceparent, parse_traceparent

MAX_LISTED = 500


class SpanStart(BaseModel):
    """Body of POST /api/v1/spans."""

    model_config = {"extra": "forbid"}
    operation: str = Field(min_length=1, max_length=256)
    agent_id: str = Field(min_length=1, max_length=253)
    trace_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    parent_span_id: str | None = Field(None, pattern=r"^[0-9a-f]{16}$")
    traceparent: str | None = Field(None, description="W3C header of the caller; sets trace and parent.")
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)


class SpanFinish(BaseModel):
    """Body of POST /api/v1/spans/{span_id}/finish."""

    model_config = {"extra": "forbid"}
    status: str = Field(STATUS_OK, pattern=f"^({STATUS_OK}|{STATUS_ERROR}|{STATUS_UNSET})$")
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    """The body, decompressed by aiohttp (gzip/deflate; capped by client_max_size), within `limit`."""
    body = await request.read()
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


async def otlp_traces(request: web.Request) -> web.Response:
    """OTLP/HTTP: `ExportTraceServiceRequest` as protobuf or JSON; partial success when spans are refused."""
    settings, tracer = request.app[SETTINGS], request.app[TRACER]
    content_type = request.content_type or "application/x-protobuf"
    if not content_type.startswith((JSON, "application/x-protobuf", "application/protobuf")):
        raise web.HTTPUnsupportedMediaType(text="send application/x-protobuf or application/json")
    body = await _read_bounded(request, settings.tracing.max_otlp_bytes)
    try:
        spans = list(spans_of(decode_request(body, content_type), settings.tracing.agent_attribute))
    except OtlpError as error:
        raise web.HTTPBadRequest(text=str(error)) from None
    rejected, reason = 0, ""
    for span in spans:
        try:
            tracer.add(span, source="otlp")
        except TraceLimitError as error:
            rejected, reason = rejected + 1, str(error)
    payload, response_type = encode_response(rejected, reason, content_type)
    return web.Response(body=payload, content_type=response_type)


async def start_span(request: web.Request) -> web.Response:
    body = await read_model(request, SpanStart)
    trace_id, parent = body.trace_id, body.parent_span_id
    if body.traceparent is not None:
        context = parse_traceparent(body.traceparent)
        if context is None:
            raise web.HTTPUnprocessableEntity(text="traceparent is not a valid W3C traceparent header")
        trace_id, parent = context.trace_id, context.span_id
    tracer = request.app[TRACER]
    try:
        span_id = tracer.start_trace(trace_id, body.operation, body.agent_id, body.metadata, parent)
    except TraceLimitError as error:
        raise web.HTTPConflict(text=str(error)) from None
    span = tracer.span(span_id)
    assert span is not None  # just created
    return web.json_response({"span_id": span_id, "trace_id": span.trace_id,
                              "traceparent": format_traceparent(span.trace_id, span_id)}, status=201)


async def finish_span(request: web.Request) -> web.Response:
    body = await read_model(request, SpanFinish)
    span_id = request.match_info["span_id"]
    if not request.app[TRACER].finish_span(span_id, body.status, body.metadata):
        raise web.HTTPConflict(text=f"span {span_id} is unknown or already finished")
    return web.json_response({"span_id": span_id, "status": body.status})


async def get_trace(request: web.Request) -> web.Response:
    trace = request.app[TRACER].traces.get(request.match_info["trace_id"])
    if trace is None:
        raise web.HTTPNotFound(text=f"no trace {request.match_info['trace_id']}")
    try:
        analysis = await request.app[ANALYST].analysis(trace)
    except AnalystBusy as error:
        raise web.HTTPServiceUnavailable(text=str(error), headers={"Retry-After": "1"}) from None
    return web.json_response(analysis)


async def list_traces(request: web.Request) -> web.Response:
    try:
        limit = min(MAX_LISTED, max(1, int(request.query.get("limit", "50"))))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    traces = request.app[TRACER].recent(request.query.get("agent_id"), limit)
    return web.json_response({"traces": [
        {"trace_id": trace.trace_id, "duration_seconds": round(trace.duration, 6), "spans": len(trace.spans),
         "open_spans": trace.open_spans, "agents": sorted(trace.agents),
         "root_operations": sorted({span.operation for span in trace.spans.values() if span.parent_id is None})}
        for trace in traces]})


def add_trace_routes(app: web.Application) -> None:
    app.router.add_post("/v1/traces", otlp_traces)
    app.router.add_post("/api/v1/spans", start_span)
    app.router.add_post("/api/v1/spans/{span_id}/finish", finish_span)
    app.router.add_get("/api/v1/traces", list_traces)
    app.router.add_get("/api/v1/traces/{trace_id}", get_trace)
