"""OTLP/HTTP decoding: export requests of the three signals (protobuf or JSON), spans out of traces,
and the responses with partial success.

Uses opentelemetry-proto's generated classes. OTLP/JSON writes trace and span ids as hex
(not proto3 JSON's base64), so those fields are converted before parsing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

try:
    from google._upb import _message as _upb_message
except ImportError:  # another protobuf implementation: its own limits apply
    _upb_message = None

from ..proto_wire import Malformed, TooManyFields, parse_in_pieces
from .cycle_gc import paused
from .spans import (KIND_CLIENT, KIND_CONSUMER, KIND_INTERNAL, KIND_PRODUCER, KIND_SERVER, STATUS_ERROR, STATUS_OK,
                    STATUS_UNSET, Span, SpanEvent, SpanLink)

_KINDS = {OtlpSpan.SPAN_KIND_INTERNAL: KIND_INTERNAL, OtlpSpan.SPAN_KIND_SERVER: KIND_SERVER,
          OtlpSpan.SPAN_KIND_CLIENT: KIND_CLIENT, OtlpSpan.SPAN_KIND_PRODUCER: KIND_PRODUCER,
          OtlpSpan.SPAN_KIND_CONSUMER: KIND_CONSUMER}
_STATUSES = {Status.STATUS_CODE_ERROR: STATUS_ERROR, Status.STATUS_CODE_OK: STATUS_OK}
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
MAX_NAME = 253  # longest service or agent id kept (as the JSON span API's agent ids)
MAX_OPERATION = 1024  # longest span name kept
Request = TypeVar("Request", bound=Message)
# What a signal's response calls refused items: (response class, field of partial_success).
RESPONSES: dict[type[Message], tuple[type[Message], str]] = {
    ExportTraceServiceRequest: (ExportTraceServiceResponse, "rejected_spans"),
    ExportMetricsServiceRequest: (ExportMetricsServiceResponse, "rejected_data_points"),
    ExportLogsServiceRequest: (ExportLogsServiceResponse, "rejected_log_records"),
}


class OtlpError(ValueError):
    """The request body is not a valid OTLP export."""


class OtlpTooLarge(OtlpError):
    """The export holds more items (or JSON values) than the limits allow."""


def decode_request(body: bytes, content_type: str, kind: type[Request] = ExportTraceServiceRequest,  # type: ignore[assignment]
                   max_items: int = 100_000, max_json_values: int = 500_000) -> Request:
    """The export request of signal `kind` from a protobuf or JSON body; OtlpTooLarge beyond `max_items`
    (tracing.max_otlp_items) or `max_json_values` (tracing.max_otlp_json_values), OtlpError when it is not one.
    JSON values are counted in the text before parsing: a few KB of gzip expand to a million empty objects,
    which json_format builds at 4 us each."""
    request = kind()
    _keep_default_depth_limit()
    try:
        if content_type.startswith(JSON):
            values = body.count(b"{") + body.count(b"[") + body.count(b",")  # an upper bound, in C
            if values > max_json_values:
                raise OtlpTooLarge(f"over {max_json_values} JSON values in one export (tracing.max_otlp_json_values); "
                                   f"send smaller batches (the SDK's max_export_batch_size) or protobuf")
            with paused():  # a million containers: the cycle collector's passes would triple the parse
                document = json.loads(body)
            if not isinstance(document, dict):
                raise OtlpError("invalid OTLP export: the JSON body must be an object")
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
        else:  # in pieces: a worker thread hands the interpreter lock back between them
            parse_in_pieces(request, body, max_items)
    except OtlpError:
        raise
    except TooManyFields:
        raise _too_many(max_items) from None
    except Malformed as error:
        raise OtlpError(f"invalid OTLP export: {error}") from None
    except RecursionError:
        raise OtlpError("invalid OTLP export: nested too deeply") from None
    except (DecodeError, json_format.ParseError, json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError,
            AttributeError) as error:
        raise OtlpError(f"invalid OTLP export: {error}") from None
    if _items_over(request, max_items):
        raise _too_many(max_items)
    return request


def _too_many(max_items: int) -> OtlpTooLarge:
    return OtlpTooLarge(f"over {max_items} resources, scopes, metrics, spans, points or log records (or their "
                        f"attributes) in one export (tracing.max_otlp_items); send smaller batches (the SDK's "
                        f"max_export_batch_size)")


# The repeated fields of each signal, from the request down to its items.
_LEVELS = {ExportTraceServiceRequest: ("resource_spans", "scope_spans", "spans"),
           ExportMetricsServiceRequest: ("resource_metrics", "scope_metrics", "metrics"),
           ExportLogsServiceRequest: ("resource_logs", "scope_logs", "log_records")}


def _items_over(request: Message, max_items: int) -> bool:
    """Whether the request holds more than `max_items` resources, scopes, items and metric points (counted
    with len(), stopping as soon as the count is over)."""
    top, scopes, items = _LEVELS[type(request)]
    resources = getattr(request, top)
    count = len(resources)
    for resource in resources:
        if count > max_items:
            return True
        for scope in getattr(resource, scopes):
            entries = getattr(scope, items)
            count += 1 + len(entries)
            if items == "metrics":
                for metric in entries:
                    kind = metric.WhichOneof("data")
                    count += len(getattr(metric, kind).data_points) if kind else 0
            if count > max_items:
                return True
    return count > max_items


def _keep_default_depth_limit() -> None:
    """Keep protobuf's default nesting limit for untrusted bodies. Another library in the process (the
    Pulumi SDK, in the tests) may allow oversize protos, which lifts upb's limit to 65,535 levels:
    20,000 nested groups then overflow the C stack and kill the process."""
    if _upb_message is not None:
        _upb_message.SetAllowOversizeProtos(False)


def _hex_ids_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str) and value:
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise OtlpError(f"{key} {value!r} is not hex") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def spans_of(request: ExportTraceServiceRequest, agent_attribute: str = "service.name") -> Iterator[Span]:
    """Spans of an export; the agent id comes from the resource attribute `agent_attribute`, the
    service from `service.name`; kind, events and links are kept (the tracer caps them)."""
    for resource_spans in request.resource_spans:
        resource = {item.key: attribute_value(item.value) for item in resource_spans.resource.attributes}
        service = str(resource.get("service.name") or "unknown")[:MAX_NAME]
        # Not cut: an agent id over 253 characters is refused (tracing/api.py), not kept as another agent's.
        agent_id = str(resource.get(agent_attribute) or resource.get("service.name") or "unknown")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                if len(trace_id) != 16 or len(span_id) != 8 or len(parent_id) not in (0, 8):
                    raise OtlpError("span with an invalid trace, span or parent span id length")
                links = span.links
                if links and any(len(link.trace_id) != 16 or len(link.span_id) != 8 for link in links):
                    raise OtlpError("span link with an invalid trace or span id length")
                attributes = {item.key: attribute_value(item.value) for item in span.attributes}
                status = span.status
                if status.message:
                    attributes["status.message"] = status.message
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                events = span.events
                yield Span(trace_id.hex(), span_id.hex(), span.name[:MAX_OPERATION], agent_id, start / 1e9,
                           parent_id=parent_id.hex() or None, end=(end if end > start else start) / 1e9,
                           status=_STATUSES.get(status.code, STATUS_UNSET), attributes=attributes,
                           kind=_KINDS.get(span.kind, ""), service=service,
                           events=tuple(SpanEvent(event.name, event.time_unix_nano / 1e9,
                                                  {item.key: attribute_value(item.value) for item in event.attributes})
                                        for event in events) if events else (),
                           links=tuple(SpanLink(link.trace_id.hex(), link.span_id.hex()) for link in links)
                           if links else ())


def attribute_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as Python (bytes as hex)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [attribute_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: attribute_value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def encode_response(rejected: int, message: str, content_type: str,
                    kind: type[Message] = ExportTraceServiceRequest) -> tuple[bytes, str]:
    """The response to an export of signal `kind` (with partial_success when items were rejected, or
    a message alone as a warning), in the request's encoding."""
    response_class, rejected_field = RESPONSES[kind]
    response = response_class()
    if rejected or message:
        setattr(response.partial_success, rejected_field, rejected)  # type: ignore[attr-defined]
        response.partial_success.error_message = message  # type: ignore[attr-defined]
    if content_type.startswith(JSON):
        return json.dumps(json_format.MessageToDict(response)).encode(), JSON
    return response.SerializeToString(), PROTOBUF
