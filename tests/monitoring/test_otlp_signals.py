"""OTLP /v1/metrics and /v1/logs: GenAI client metrics kept per agent and model (cumulative and delta
streams, a restarted agent, aggregate operations ignored, the stream cap), logs acknowledged and
counted, both encodings, and bad bodies answered 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from monitoring.app import init_app
from monitoring.tracing.genai_metrics import GenAIMetrics

from .conftest import make_settings

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


def export(points: list[dict[str, Any]], temporality: int = CUMULATIVE, service: str = "writer",
           metric: str = "gen_ai.client.token.usage", start: int = 1) -> ExportMetricsServiceRequest:
    """One histogram metric with a point per entry: {"sum", "count", **attributes}."""
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    item = resource.resource.attributes.add()
    item.key, item.value.string_value = "service.name", service
    histogram = resource.scope_metrics.add().metrics.add()
    histogram.name = metric
    histogram.histogram.aggregation_temporality = temporality
    for values in points:
        point = histogram.histogram.data_points.add()
        point.start_time_unix_nano, point.count, point.sum = start, values.pop("count", 1), values.pop("sum")
        for key, value in values.items():
            attribute = point.attributes.add()
            attribute.key, attribute.value.string_value = key, value
    return request


CHAT = {"gen_ai.operation.name": "chat", "gen_ai.response.model": "gpt-4o"}


def test_cumulative_streams_count_their_latest_value_and_a_restart_adds() -> None:
    metrics = GenAIMetrics()
    for total in (100, 250):  # the same stream re-sent with a growing total
        metrics.ingest(export([{"sum": total, "count": 2, **CHAT, "gen_ai.token.type": "input"}]))
    metrics.ingest(export([{"sum": 40, **CHAT, "gen_ai.token.type": "input"}], start=99))  # the agent restarted
    assert metrics.tokens() == {("writer", "gpt-4o", "input", ""): 290}


def test_the_least_recent_series_is_retired_into_the_totals() -> None:
    """Restarted agents come back with a new service.instance.id: old series retire, their totals stay."""
    metrics = GenAIMetrics(max_streams=2)
    for instance in range(5):
        request = export([{"sum": 100, **CHAT, "gen_ai.token.type": "input"}])
        item = request.resource_metrics[0].resource.attributes.add()
        item.key, item.value.string_value = "service.instance.id", f"pod-{instance}"
        assert metrics.ingest(request) == 0
    assert metrics.tokens() == {("writer", "gpt-4o", "input", ""): 500} and len(metrics.streams) == 2


def test_delta_streams_add_up_and_aggregate_operations_are_ignored() -> None:
    metrics = GenAIMetrics()
    for _ in range(3):
        metrics.ingest(export([{"sum": 10, **CHAT, "gen_ai.token.type": "output"},
                               {"sum": 30, "gen_ai.operation.name": "invoke_agent", "gen_ai.token.type": "output"}],
                              temporality=DELTA))
    assert metrics.tokens() == {("writer", "gpt-4o", "output", ""): 30}
    assert (metrics.stats.points_used, metrics.stats.points_ignored) == (3, 3)


def test_operation_duration_gives_calls_and_seconds() -> None:
    metrics = GenAIMetrics()
    metrics.ingest(export([{"sum": 1.5, "count": 3, **CHAT}], metric="gen_ai.client.operation.duration"))
    assert metrics.calls() == {("writer", "gpt-4o", "chat", ""): 3}
    assert metrics.seconds() == {("writer", "gpt-4o", "chat", ""): 1.5}
    assert metrics.usage()["agents"]["writer"]["gpt-4o"] == {"tokens": {}, "calls": {"chat": 3},
                                                             "seconds": {"chat": 1.5}}


async def test_the_endpoints_answer_the_otlp_way(aiohttp_client: Callable[..., Any]) -> None:
    client = await aiohttp_client(init_app(make_settings(tracing={"max_metric_streams": 1})))
    body = export([{"sum": 5, **CHAT, "gen_ai.token.type": "input"},
                   {"sum": 7, **CHAT, "gen_ai.token.type": "output"},
                   {"sum": 9, **CHAT, "gen_ai.token.type": "reasoning"}]).SerializeToString()
    response = await client.post("/v1/metrics", data=body, headers={"Content-Type": "application/x-protobuf"})
    assert response.status == 200
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(await response.read())
    # One series live, one retired into the totals: the third is over the cap.
    assert answer.partial_success.rejected_data_points == 1
    assert "1 GenAI metric series" in answer.partial_success.error_message
    usage = (await (await client.get("/api/v1/genai/usage")).json())["agents"]["writer"]["gpt-4o"]["tokens"]
    assert usage == {"input": 5, "output": 7}

    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "hi"}, "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"},
        {"body": {"stringValue": "again"}}]}]}]}
    response = await client.post("/v1/logs", data=json.dumps(logs), headers={"Content-Type": "application/json"})
    assert response.status == 200 and await response.json() == {}
    text = await (await client.get("/metrics")).text()
    assert "monitoring_otlp_log_records_total 2.0" in text
    assert 'monitoring_otlp_metric_points_total{result="dropped"} 1.0' in text
    assert (await client.get("/api/v1/genai/usage")).status == 200

    for path, data, kind in (("/v1/metrics", b"\xff\x00garbage", "application/x-protobuf"),
                             ("/v1/logs", b'{"resourceLogs": [{"scopeLogs": "no"}]}', "application/json"),
                             ("/v1/logs", b'[' * 100_000, "application/json"),
                             ("/v1/metrics", b"{}", "text/plain")):
        response = await client.post(path, data=data, headers={"Content-Type": kind})
        assert 400 <= response.status < 500, (path, response.status, await response.text())


async def test_json_that_is_not_an_object_and_bad_ids_answer_400(aiohttp_client: Callable[..., Any]) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    for path in ("/v1/traces", "/v1/metrics", "/v1/logs"):
        for body in (b"null", b"3", b"true", b'"text"', b"[]"):
            response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
            assert response.status == 400, (path, body, response.status)
    long_parent = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
        "parentSpanId": "ab" * 5000, "name": "x"}]}]}]}
    assert (await client.post("/v1/traces", json=long_parent)).status == 400


async def test_non_finite_sums_answer_valid_json(aiohttp_client: Callable[..., Any]) -> None:
    """A NaN or infinite histogram sum is no token count or duration: the point is dropped (counted), and the
    usage answer stays valid JSON (it was a 500: a total no integer can hold)."""
    client = await aiohttp_client(init_app(make_settings()))
    body = export([{"sum": float("inf"), **CHAT, "gen_ai.token.type": "input"}]).SerializeToString()
    assert (await client.post("/v1/metrics", data=body, headers={"Content-Type": "application/x-protobuf"})).status \
        == 200
    body = export([{"sum": float("nan"), **CHAT}], metric="gen_ai.client.operation.duration").SerializeToString()
    assert (await client.post("/v1/metrics", data=body, headers={"Content-Type": "application/x-protobuf"})).status \
        == 200

    def refuse(constant: str) -> None:
        raise AssertionError(f"bare {constant} in a JSON answer")

    response = await client.get("/api/v1/genai/usage")
    assert response.status == 200
    assert json.loads(await response.text(), parse_constant=refuse)["agents"] == {}  # no count is NaN or Inf
    assert 'monitoring_otlp_metric_points_total{result="dropped"} 2.0' in await (await client.get("/metrics")).text()
