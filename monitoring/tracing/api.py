"""HTTP API of the tracer: OTLP/HTTP ingestion at /v1/traces (and /v1/metrics, /v1/logs, so a generic
OTLP endpoint setting works), a JSON span API for agents without OpenTelemetry, and queries under
/api/v1/traces and /api/v1/genai/usage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from ..http_bodies import read_body, read_model
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..state import ANALYST, COLLECTOR, GENAI_METRICS, INGEST_NAMESPACE, RELAY, SETTINGS, THREAD_SLOT, TRACER
from ..credentials import Scope
from ..json_answers import json_answer
from ..label_limits import BODY_SIZE, LabelLimits
from ..routes import Body, route
from ..settings import agent_id_problem
from .analyst import AnalystBusy
from .genai import AGENT_NAMES
from .genai_metrics import log_records
from .otlp import JSON, PROTOBUF, OtlpError, OtlpTooLarge, attribute_value, decode_request, encode_response, spans_of
from .relay import Export
from .spans import STATUS_ERROR, STATUS_OK, STATUS_UNSET, TraceLimitError
from .traceparent import format_traceparent, parse_traceparent

MAX_LISTED = 500
OTLP_METRICS_SOURCE = "otlp_metrics"  # its refusals on /metrics (monitoring_bodies_refused_total)
OTLP_TRACES_SOURCE, OTLP_LOGS_SOURCE = "otlp_traces", "otlp_logs"
ITEMS = "items"  # the refusal reason of an export over tracing.max_otlp_items or max_otlp_json_values
# Bodies up to this size are decoded on the event loop (JSON: at most ~11,000 objects, ~25 ms); larger ones in
# a worker thread. Work on the loop after decoding goes in slices of ITEMS_PER_SLICE spans or points.
INLINE_DECODE_BYTES = 32 * 1024
ITEMS_PER_SLICE = 1_000
POINTS_PER_SLICE = 2_000  # metric points checked between two yields to the event loop


class SpanStart(BaseModel):
    """Body of POST /api/v1/spans."""

    model_config = {"extra": "forbid"}
    operation: str = Field(min_length=1, max_length=256)
    agent_id: str = Field(min_length=1, max_length=253)
    trace_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    parent_span_id: str | None = Field(None, pattern=r"^[0-9a-f]{16}$")
    traceparent: str | None = Field(None, description="W3C header of the caller; sets trace and parent.")
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("agent_id")
    @classmethod
    def _agent_id(cls, agent_id: str) -> str:
        problem = agent_id_problem(agent_id)
        if problem is not None:
            raise ValueError(f"{problem}; send the agent's id as its settings and metrics name it")
        return agent_id

    @field_validator("metadata")
    @classmethod
    def _named_agents(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return _agent_names_checked(metadata)


class SpanFinish(BaseModel):
    """Body of POST /api/v1/spans/{span_id}/finish."""

    model_config = {"extra": "forbid"}
    status: str = Field(STATUS_OK, pattern=f"^({STATUS_OK}|{STATUS_ERROR}|{STATUS_UNSET})$")
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _named_agents(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return _agent_names_checked(metadata)


def _agent_name_problem(attributes: Mapping[str, Any]) -> str | None:
    """Why the GenAI agent the attributes name (`gen_ai.agent.name` / `.id`) is not a valid agent id, or None:
    the analysis and the traces listing use it as an agent id."""
    for name in AGENT_NAMES:
        named = attributes.get(name)
        if named is not None and named != "":
            problem = agent_id_problem(str(named))
            if problem is not None:
                return f"{name}: {problem}"
    return None


def _agent_names_checked(metadata: dict[str, Any]) -> dict[str, Any]:
    problem = _agent_name_problem(metadata)
    if problem is not None:
        raise ValueError(problem)
    return metadata


async def _export(request: web.Request, kind: type[Message], source: str,
                  then: Callable[[Message], Any] = lambda export: export) -> tuple[Any, bytes]:
    """`then` of the OTLP export request of signal `kind` in the body, and the body: 415 for other media, 413
    over the byte cap or tracing.max_otlp_items / max_otlp_json_values (counted as refused bodies of `source`),
    400 invalid. Bodies over INLINE_DECODE_BYTES are decoded (and `then` run) in a worker thread, in the app's one
    thread slot (app[THREAD_SLOT], shared with scrape parsing), so the event loop keeps answering meanwhile."""
    content_type = request.content_type or PROTOBUF
    if not content_type.startswith((JSON, PROTOBUF, "application/protobuf")):
        raise web.HTTPUnsupportedMediaType(text="send application/x-protobuf or application/json")
    tracing, refusals = request.app[SETTINGS].tracing, request.app[COLLECTOR].refusals
    try:
        body = await read_body(request, tracing.max_otlp_bytes)
    except web.HTTPRequestEntityTooLarge:
        refusals.add(source, BODY_SIZE)
        raise

    def decoded() -> Any:
        return then(decode_request(body, content_type, kind, tracing.max_otlp_items, tracing.max_otlp_json_values))

    try:
        if len(body) <= INLINE_DECODE_BYTES:
            return decoded(), body
        async with request.app[THREAD_SLOT]:  # shared with scrape parsing: more threads would starve the loop
            return await asyncio.to_thread(decoded), body
    except OtlpTooLarge as error:
        refusals.add(source, ITEMS)
        raise web.HTTPRequestEntityTooLarge(max_size=tracing.max_otlp_items, actual_size=0,
                                            text=str(error)) from None
    except OtlpError as error:
        raise web.HTTPBadRequest(text=str(error)) from None


def _runs_elsewhere(request: web.Request, agent_id: str, namespace: str | None) -> str | None:
    """Why an ingestion token of `namespace` may not send as `agent_id` (the agent belongs to other
    namespaces: discovery sees it only there, or remote-write bound it to another), or None."""
    if namespace is None:
        return None
    seen = request.app[COLLECTOR].agent_namespaces(agent_id)
    if seen and namespace not in seen:
        return (f"agent {agent_id!r} runs in {', '.join(sorted(seen))}; this ingestion token is for "
                f"{namespace}")
    return None


def _named_elsewhere(request: web.Request, attributes: Mapping[str, Any], namespace: str | None) -> str | None:
    """Why this token may not send attributes that name a GenAI agent (`gen_ai.agent.name` / `.id`: the
    analysis credits the span and its tokens to that agent) of another namespace, or None."""
    if namespace is None:
        return None
    for name in AGENT_NAMES:
        named = attributes.get(name)
        if named is not None and named != "":
            why = _runs_elsewhere(request, str(named), namespace)
            if why:
                return f"{name}: {why}"
    return None


def _relay(request: web.Request, signal: str, body: bytes) -> None:
    """Hand a valid export to the relay, when one is set for the signal."""
    relay = request.app.get(RELAY)
    settings = request.app[SETTINGS].tracing.relay
    if relay is not None and settings is not None and signal in settings.signals:
        relay.submit(Export(signal, body, JSON if (request.content_type or "").startswith(JSON) else PROTOBUF))


def _answer(request: web.Request, kind: type[Message], rejected: int = 0, message: str = "") -> web.Response:
    payload, response_type = encode_response(rejected, message, request.content_type or "", kind)
    return web.Response(body=payload, content_type=response_type)


async def otlp_traces(request: web.Request) -> web.Response:
    """OTLP/HTTP: `ExportTraceServiceRequest` as protobuf or JSON; partial success when spans are refused."""
    settings, tracer = request.app[SETTINGS], request.app[TRACER]
    spans, body = await _export(request, ExportTraceServiceRequest, OTLP_TRACES_SOURCE,
                                lambda export: list(spans_of(export, settings.tracing.agent_attribute)))  # type: ignore[arg-type]
    _relay(request, "traces", body)
    rejected, reason = 0, ""
    namespace = request.get(INGEST_NAMESPACE)
    refused: dict[str, str | None] = {}  # agent id -> why this token can't send as it (None: it can)
    invalid: dict[str, str | None] = {}  # agent id -> why it is no agent id (None: it is one)
    agent_names = " or ".join(dict.fromkeys((settings.tracing.agent_attribute, "service.name")))
    for index, span in enumerate(spans, 1):
        if not index % ITEMS_PER_SLICE:
            await asyncio.sleep(0)
        if span.agent_id not in refused:
            problem = agent_id_problem(span.agent_id)
            invalid[span.agent_id] = f"agent id {span.agent_id[:100]!r} ({agent_names}): {problem}" if problem else None
            refused[span.agent_id] = None if problem else _runs_elsewhere(request, span.agent_id, namespace)
        not_an_id = invalid[span.agent_id] or _agent_name_problem(span.attributes)
        if not_an_id:  # the README's agent ids wherever they enter: nothing to escape in a label, a page or a log
            tracer.stats.invalid_agent_ids += 1
            rejected, reason = rejected + 1, f"{not_an_id}; the span is refused"
            continue
        why = refused[span.agent_id] or _named_elsewhere(request, span.attributes, namespace)
        if why:
            rejected, reason = rejected + 1, why
            continue
        span.namespace = namespace or ""
        try:
            tracer.add(span, source="otlp")
        except TraceLimitError as error:
            rejected, reason = rejected + 1, str(error)
    return _answer(request, ExportTraceServiceRequest, rejected, reason)


async def otlp_metrics(request: web.Request) -> web.Response:
    """OTLP/HTTP metrics: the GenAI client metrics' model-call points are kept (genai_metrics.py), the
    rest acknowledged and counted; partial success when the stream cap refuses points."""
    export, body = await _export(request, ExportMetricsServiceRequest, OTLP_METRICS_SOURCE)
    settings = request.app[SETTINGS]
    await _check_point_labels(request, export, settings.label_limits, settings.tracing.max_metric_attribute_bytes)
    _relay(request, "metrics", body)
    metrics = request.app[GENAI_METRICS]
    namespace = request.get(INGEST_NAMESPACE)
    rejected = 0
    for refused in metrics.ingest_slices(export, settings.tracing.agent_attribute,  # type: ignore[arg-type]
                                         lambda agent: _runs_elsewhere(request, agent, namespace) is None,
                                         namespace or "", ITEMS_PER_SLICE):
        rejected += refused
        await asyncio.sleep(0)
    message = (f"points refused: an agent this token may not send as, an agent name (service.name, "
               f"gen_ai.agent.name) that is not a valid agent id (1 to 253 letters, digits, _ . : / -), or "
               f"{metrics.max_streams} GenAI metric series (and as many retired) kept at most" if rejected else "")
    return _answer(request, ExportMetricsServiceRequest, rejected, message)


async def _check_point_labels(request: web.Request, export: Any, limits: LabelLimits, max_bytes: int) -> None:
    """400 (the body refused whole, nothing kept, counted) when a point's attributes break the label limits
    or the request's attributes pass `max_bytes`; a value counts in characters of its text."""
    checked = total = 0
    for resource_metrics in export.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                for point in getattr(metric, kind).data_points if kind else ():
                    checked += 1
                    if not checked % POINTS_PER_SLICE:
                        await asyncio.sleep(0)
                    problem = _cheap_problem(point.attributes, limits)
                    pairs = [] if problem else [(item.key, _text(item.value)) for item in point.attributes]
                    problem = problem or limits.problem(pairs)
                    total += sum(len(key) + len(value) for key, value in pairs)
                    if problem is None and total > max_bytes:
                        problem = "label_bytes"
                    if problem is not None:
                        request.app[COLLECTOR].refusals.add(OTLP_METRICS_SOURCE, problem)
                        raise web.HTTPBadRequest(text=_limit_message(problem, metric.name, limits, max_bytes))


# No text of a non-string attribute value is shorter than a quarter of its encoding (an element of an array
# takes at most 12 bytes on the wire and 3 characters written out), so a larger one is refused unwritten.
WIRE_BYTES_PER_CHARACTER = 4


def _cheap_problem(attributes: Any, limits: LabelLimits) -> str | None:
    """A limit the attributes break, found without writing any value out (an array of 32,000 values took
    half a second to write on the event loop), or None."""
    if len(attributes) > limits.max_labels:
        return "label_limit"
    for item in attributes:
        value = item.value
        if value.HasField("string_value"):
            continue
        if value.ByteSize() > WIRE_BYTES_PER_CHARACTER * limits.max_value_length:
            return "label_value_length"
    return None


def _text(value: Any) -> str:
    """An attribute value as the text its length is measured in (strings as they are)."""
    return value.string_value if value.HasField("string_value") else str(attribute_value(value))


def _limit_message(problem: str, metric: str, limits: LabelLimits, max_bytes: int) -> str:
    bound = {"label_limit": f"label_limit ({limits.max_labels} attributes per point)",
             "label_name_length": f"label_name_length_limit ({limits.max_name_length} characters)",
             "label_value_length": f"label_value_length_limit ({limits.max_value_length} characters)",
             "label_bytes": f"tracing.max_metric_attribute_bytes ({max_bytes} bytes per request)"}[problem]
    return f"a point of {metric!r} is beyond {bound}; the body is refused whole (drop or shorten attributes with " \
           f"the SDK's views)"


async def otlp_logs(request: web.Request) -> web.Response:
    """OTLP/HTTP logs: validated, acknowledged and counted, not kept (traces carry what the analysis uses)."""
    export, body = await _export(request, ExportLogsServiceRequest, OTLP_LOGS_SOURCE)
    _relay(request, "logs", body)
    request.app[GENAI_METRICS].stats.log_records += log_records(export.resource_logs)  # type: ignore[attr-defined]
    return _answer(request, ExportLogsServiceRequest)


async def genai_usage(request: web.Request) -> web.Response:
    """Token usage and model calls per agent and model, from the agents' OTLP GenAI client metrics."""
    return json_answer(request.app[GENAI_METRICS].usage())


async def start_span(request: web.Request) -> web.Response:
    body = await read_model(request, SpanStart)
    trace_id, parent = body.trace_id, body.parent_span_id
    if body.traceparent is not None:
        context = parse_traceparent(body.traceparent)
        if context is None:
            raise web.HTTPUnprocessableEntity(text="traceparent is not a valid W3C traceparent header")
        trace_id, parent = context.trace_id, context.span_id
    namespace = request.get(INGEST_NAMESPACE)
    elsewhere = _runs_elsewhere(request, body.agent_id, namespace) or _named_elsewhere(request, body.metadata,
                                                                                         namespace)
    if elsewhere:
        raise web.HTTPForbidden(text=elsewhere)
    tracer = request.app[TRACER]
    try:
        span_id = tracer.start_trace(trace_id, body.operation, body.agent_id, body.metadata, parent,
                                     namespace=namespace or "")
    except TraceLimitError as error:
        raise web.HTTPConflict(text=str(error)) from None
    span = tracer.span(span_id)
    assert span is not None  # just created
    return json_answer({"span_id": span_id, "trace_id": span.trace_id,
                              "traceparent": format_traceparent(span.trace_id, span_id)}, status=201)


async def finish_span(request: web.Request) -> web.Response:
    body = await read_model(request, SpanFinish)
    span_id = request.match_info["span_id"]
    namespace, span = request.get(INGEST_NAMESPACE), request.app[TRACER].span(span_id)
    if namespace is not None and span is not None and span.namespace != namespace:
        raise web.HTTPForbidden(text=f"span {span_id} was started with another namespace's token")
    elsewhere = _named_elsewhere(request, body.metadata, namespace)
    if elsewhere:
        raise web.HTTPForbidden(text=elsewhere)
    if not request.app[TRACER].finish_span(span_id, body.status, body.metadata):
        raise web.HTTPConflict(text=f"span {span_id} is unknown or already finished")
    return json_answer({"span_id": span_id, "status": body.status})


async def get_trace(request: web.Request) -> web.Response:
    trace = request.app[TRACER].traces.get(request.match_info["trace_id"])
    if trace is None:
        raise web.HTTPNotFound(text=f"no trace {request.match_info['trace_id']}")
    try:
        analysis = await request.app[ANALYST].analysis(trace)
    except AnalystBusy as error:
        raise web.HTTPServiceUnavailable(text=str(error), headers={"Retry-After": "1"}) from None
    return json_answer(analysis)


async def list_traces(request: web.Request) -> web.Response:
    try:
        limit = min(MAX_LISTED, max(1, int(request.query.get("limit", "50"))))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    traces = request.app[TRACER].recent(request.query.get("agent_id"), limit)
    return json_answer({"traces": [
        {"trace_id": trace.trace_id, "duration_seconds": round(trace.duration, 6), "spans": len(trace.spans),
         "open_spans": trace.open_spans, "agents": sorted(trace.agents),
         "root_operations": sorted({span.operation for span in trace.spans.values() if span.parent_id is None})}
        for trace in traces]})


def add_trace_routes(app: web.Application) -> None:
    """The tracing routes, each with its scope: OTLP (protobuf or JSON, checked by the handlers) and the span
    API are ingestion, the reads need the read credential."""
    route(app, "POST", "/v1/traces", otlp_traces, Scope.INGEST, Body.OWN)
    route(app, "POST", "/v1/metrics", otlp_metrics, Scope.INGEST, Body.OWN)
    route(app, "POST", "/v1/logs", otlp_logs, Scope.INGEST, Body.OWN)
    route(app, "GET", "/api/v1/genai/usage", genai_usage, Scope.READ)
    route(app, "POST", "/api/v1/spans", start_span, Scope.INGEST, Body.JSON)
    route(app, "POST", "/api/v1/spans/{span_id}/finish", finish_span, Scope.INGEST, Body.JSON)
    route(app, "GET", "/api/v1/traces", list_traces, Scope.READ)
    route(app, "GET", "/api/v1/traces/{trace_id}", get_trace, Scope.READ)
