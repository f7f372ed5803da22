"""Who a span says it is, after the second attack pass (issue 23 follow-ups): a span id another namespace sent
first is a refused, counted and reported conflict, not a silent takeover; agent ids on the trace paths are
agent ids; a settings agent's `info.namespace` binds its spans and GenAI points; a point attribute of 32,000
values is refused without being written out. Real HTTP against the real app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (ExportMetricsServiceRequest,
                                                                          ExportMetricsServiceResponse)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

from monitoring.app import init_app
from monitoring.credentials import ingest_token
from monitoring.tracing import api as tracing_api
from monitoring.tracing import model

from .conftest import make_settings
from .test_otlp_signals import CHAT, export

Client = Callable[..., Any]
ADMIN, KEY = "admin-token-9f1c3e7a5b2d8460c4e1", "ingest-key-9f1c3e7a5b2d8460c4e1"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
TRACE, SPAN = "11" * 16, "22" * 8


def bearer(namespace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ingest_token(KEY, namespace)}"}


def secured(**fields: Any) -> Any:
    return make_settings(auth={"admin_token": ADMIN, "ingest_key": KEY}, collection_interval=3600, **fields)


def traces(service: str, spans: list[tuple[str, str, str, dict[str, str | int]]]) -> bytes:
    """An OTLP export of spans (trace id, span id, name, attributes) of one resource named `service`."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    item = resource.resource.attributes.add()
    item.key, item.value.string_value = "service.name", service
    scope = resource.scope_spans.add()
    for trace_id, span_id, name, attributes in spans:
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = bytes.fromhex(trace_id), bytes.fromhex(span_id), name
        span.start_time_unix_nano, span.end_time_unix_nano = 1_000_000_000, 2_000_000_000
        for key, value in attributes.items():
            attribute = span.attributes.add()
            attribute.key = key
            if isinstance(value, int):
                attribute.value.int_value = value
            else:
                attribute.value.string_value = value
    return request.SerializeToString()


async def send_traces(client: Any, body: bytes, headers: dict[str, str]) -> ExportTraceServiceResponse:
    response = await client.post("/v1/traces", data=body, headers={**PROTOBUF, **headers})
    assert response.status == 200, await response.text()
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(await response.read())
    return answer


async def send_metrics(client: Any, request: ExportMetricsServiceRequest, headers: dict[str, str]) -> Any:
    return await client.post("/v1/metrics", data=request.SerializeToString(), headers={**PROTOBUF, **headers})


async def metric_line(client: Any, prefix: str) -> str:
    text = await (await client.get("/metrics")).text()
    return next((line for line in text.splitlines() if line.startswith(prefix)), "")


# --- 1. span id clash across namespaces -------------------------------------------------------------------


async def test_a_span_id_sent_first_by_another_namespace_is_a_reported_conflict(aiohttp_client: Client) -> None:
    """The downstream namespace learned the owner's span id from a traceparent and exports a forged span with
    it first; the owner's real span is then refused (never silently), counted, and the analysis says so."""
    client = await aiohttp_client(init_app(secured()))
    forged = traces("evil-agent", [(TRACE, SPAN, "fake-root", {"gen_ai.usage.input_tokens": 999_999})])
    assert (await send_traces(client, forged, bearer("evil"))).partial_success.rejected_spans == 0
    real = traces("payments", [(TRACE, SPAN, "real-root", {})])
    answer = await send_traces(client, real, bearer("payments-ns"))
    assert answer.partial_success.rejected_spans == 1
    assert SPAN in answer.partial_success.error_message and "another namespace" in answer.partial_success.error_message
    assert (await metric_line(client, 'monitoring_spans_dropped_total{reason="span_id_conflict"}')).endswith(" 1.0")
    analysis = await (await client.get(f"/api/v1/traces/{TRACE}", headers=ADMIN_HEADERS)).json()
    assert analysis["conflict_count"] == 1
    assert analysis["conflicts"] == [{"span_id": SPAN, "kept_namespace": "evil", "refused_namespace": "payments-ns"}]
    # The other way round too: the owner first, the forged copy refused; a reader sees both contested traces.
    other = "33" * 16
    await send_traces(client, traces("payments", [(other, SPAN, "real-root", {})]), bearer("payments-ns"))
    forged_late = await send_traces(client, traces("evil-agent", [(other, SPAN, "fake", {})]), bearer("evil"))
    assert forged_late.partial_success.rejected_spans == 1
    analysis = await (await client.get(f"/api/v1/traces/{other}", headers=ADMIN_HEADERS)).json()
    assert analysis["conflict_count"] == 1 and "real-root" in str(analysis) and "fake" not in analysis["agents"]
    assert [span["operation"] for span in analysis["longest_spans"]] == ["real-root"]


async def test_a_resent_span_of_the_same_namespace_is_kept_once_as_before(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(secured()))
    body = traces("payments", [(TRACE, SPAN, "root", {})])
    for _ in range(3):  # an exporter's retries
        answer = await send_traces(client, body, bearer("payments-ns"))
        assert answer.partial_success.rejected_spans == 0 and not answer.partial_success.error_message
    analysis = await (await client.get(f"/api/v1/traces/{TRACE}", headers=ADMIN_HEADERS)).json()
    assert analysis["span_count"] == 1 and analysis["conflict_count"] == 0 and analysis["conflicts"] == []
    assert (await metric_line(client, 'monitoring_spans_dropped_total{reason="span_id_conflict"}')).endswith(" 0.0")


async def test_the_json_span_api_answers_409_on_a_span_id_conflict(aiohttp_client: Client,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The service draws the JSON API's span ids itself; should one equal a span another namespace sent into the
    same trace (a collision, forced here), the start is refused with 409, not merged with that span."""
    client = await aiohttp_client(init_app(secured()))
    await send_traces(client, traces("evil-agent", [(TRACE, SPAN, "fake", {})]), bearer("evil"))
    monkeypatch.setattr(model, "new_span_id", lambda: SPAN)
    started = await client.post("/api/v1/spans", json={"operation": "plan", "agent_id": "payments",
                                                       "trace_id": TRACE}, headers=bearer("payments-ns"))
    assert started.status == 409
    assert "another namespace" in (await started.json())["error"]
    analysis = await (await client.get(f"/api/v1/traces/{TRACE}", headers=ADMIN_HEADERS)).json()
    assert analysis["conflict_count"] == 1 and analysis["span_count"] == 1


# --- 2. agent ids on the trace paths ----------------------------------------------------------------------

BAD_IDS = ["bad\nagent", "<script>alert(1)</script>", "line\u2028sep", "tab\there", "x" * 254, "a b"]


@pytest.mark.parametrize("agent_id", BAD_IDS)
async def test_the_json_span_api_refuses_what_is_no_agent_id(aiohttp_client: Client, agent_id: str) -> None:
    client = await aiohttp_client(init_app(secured()))
    response = await client.post("/api/v1/spans", json={"operation": "plan", "agent_id": agent_id},
                                 headers=bearer("team-a"))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error.startswith("agent_id: ") and ("letters, digits" in error or "characters" in error), error
    named = await client.post("/api/v1/spans", json={"operation": "plan", "agent_id": "planner",
                                                     "metadata": {"gen_ai.agent.name": agent_id}},
                              headers=bearer("team-a"))
    assert named.status == 422 and "gen_ai.agent.name" in (await named.json())["error"]
    assert (await (await client.get("/api/v1/traces", headers=ADMIN_HEADERS)).json())["traces"] == []


async def test_a_finish_may_not_name_what_is_no_agent_id(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(secured()))
    started = await client.post("/api/v1/spans", json={"operation": "plan", "agent_id": "planner"},
                                headers=bearer("team-a"))
    span_id = (await started.json())["span_id"]
    finish = await client.post(f"/api/v1/spans/{span_id}/finish", json={"metadata": {"gen_ai.agent.id": "a\r\nb"}},
                               headers=bearer("team-a"))
    assert finish.status == 422 and "gen_ai.agent.id" in (await finish.json())["error"]


async def test_otlp_spans_naming_what_is_no_agent_id_are_refused_and_counted(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(secured()))
    body = traces("svc\r\n\x1b[31m<b>", [("88" * 16, "99" * 8, "op", {})])
    answer = await send_traces(client, body, bearer("evil"))
    assert answer.partial_success.rejected_spans == 1
    assert "service.name" in answer.partial_success.error_message
    spans = [("aa" * 16, f"{index + 1:016x}", "chat", {"gen_ai.agent.name": bad}) for index, bad in enumerate(BAD_IDS)]
    spans.append(("aa" * 16, "ff" * 8, "chat", {"gen_ai.agent.name": "planner"}))
    answer = await send_traces(client, traces("helper", spans), bearer("evil"))
    assert answer.partial_success.rejected_spans == len(BAD_IDS)
    assert "gen_ai.agent.name" in answer.partial_success.error_message
    listed = (await (await client.get("/api/v1/traces", headers=ADMIN_HEADERS)).json())["traces"]
    assert [trace["agents"] for trace in listed] == [["helper", "planner"]]
    expected = f" {1.0 + len(BAD_IDS)}"
    assert (await metric_line(client, 'monitoring_spans_dropped_total{reason="agent_id"}')).endswith(expected)


# --- 3. fixes already on the branch: a settings agent's info.namespace; an array attribute -----------------

BILLING = {"agent_id": "billing", "metrics_endpoint": "http://127.0.0.1:9/metrics",
           "info": {"namespace": "billing-ns"}}
USAGE = {"sum": 900, **CHAT, "gen_ai.token.type": "input"}


async def test_a_settings_agents_namespace_binds_its_spans_and_genai_points(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(secured(agents=[BILLING])))
    # Another namespace, naming billing as the resource's service.name and as gen_ai.agent.name.
    for service, attributes in (("billing", {}), ("helper", {"gen_ai.agent.name": "billing"})):
        answer = await send_traces(client, traces(service, [("44" * 16, "55" * 8, "chat", attributes)]),
                                   bearer("evil"))
        assert answer.partial_success.rejected_spans == 1 and "billing-ns" in answer.partial_success.error_message
    for body in ({"operation": "x", "agent_id": "billing"},
                 {"operation": "x", "agent_id": "helper", "metadata": {"gen_ai.agent.name": "billing"}}):
        refused = await client.post("/api/v1/spans", json=body, headers=bearer("evil"))
        assert refused.status == 403 and "billing-ns" in (await refused.json())["error"]
    for points, service in (([dict(USAGE)], "billing"), ([{**USAGE, "gen_ai.agent.name": "billing"}], "helper")):
        answer = ExportMetricsServiceResponse()
        answer.ParseFromString(await (await send_metrics(client, export(points, service=service),
                                                         bearer("evil"))).read())
        assert answer.partial_success.rejected_data_points == 1, service
    assert (await (await client.get("/api/v1/traces?agent_id=billing", headers=ADMIN_HEADERS)).json())["traces"] == []
    assert (await (await client.get("/api/v1/genai/usage", headers=ADMIN_HEADERS)).json())["agents"] == {}
    # billing-ns's own token may.
    answer = await send_traces(client, traces("billing", [("66" * 16, "77" * 8, "chat", {})]), bearer("billing-ns"))
    assert answer.partial_success.rejected_spans == 0
    assert (await client.post("/api/v1/spans", json={"operation": "x", "agent_id": "billing"},
                              headers=bearer("billing-ns"))).status == 201
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(await (await send_metrics(client, export([dict(USAGE)], service="billing"),
                                                     bearer("billing-ns"))).read())
    assert answer.partial_success.rejected_data_points == 0
    usage = await (await client.get("/api/v1/genai/usage", headers=ADMIN_HEADERS)).json()
    assert usage["namespaces"]["billing-ns"]["billing"]["gpt-4o"]["tokens"] == {"input": 900}


async def test_an_array_attribute_of_32000_values_is_refused_unwritten(aiohttp_client: Client,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing such a value out took half a second on the event loop: it is refused from its encoded size,
    and no attribute value of the body is ever written out (the test fails if one is)."""
    client = await aiohttp_client(init_app(make_settings()))
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    item = resource.resource.attributes.add()
    item.key, item.value.string_value = "service.name", "pt"
    metric = resource.scope_metrics.add().metrics.add()
    metric.name = "x"
    point = metric.gauge.data_points.add()
    point.as_int = 1
    attribute = point.attributes.add()
    attribute.key = "k"
    for _ in range(32_000):
        attribute.value.array_value.values.add()

    def written_out(value: Any) -> Any:
        raise AssertionError("an attribute value was written out to measure it")

    monkeypatch.setattr(tracing_api, "_text", written_out)
    monkeypatch.setattr(tracing_api, "attribute_value", written_out)
    response = await send_metrics(client, request, {})
    assert response.status == 400
    assert "label_value_length_limit" in (await response.json())["error"]
    line = await metric_line(client, 'monitoring_bodies_refused_total{reason="label_value_length",'
                                     'source="otlp_metrics"}')
    assert line.endswith(" 1.0")
