"""The agent a span or an OTLP metric point names (`gen_ai.agent.name`) is held to the namespace rules of
credentials.py, GenAI metrics carry the sender's namespace (issue 23, item 6), and /v1/metrics bodies beyond
the label limits are refused whole (item 2). Two namespace tokens over real HTTP; spans through the
OpenTelemetry SDK's OTLP exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from monitoring.app import init_app
from monitoring.credentials import ingest_token
from monitoring.state import COLLECTOR

from .conftest import make_settings
from .test_otlp_signals import CHAT, export
from .test_remote_write import agent, write_request
from .test_remote_write import HEADERS as REMOTE_WRITE_HEADERS

Client = Callable[..., Any]
ADMIN, KEY = "admin-token-9f1c3e7a5b2d8460c4e1", "ingest-key-9f1c3e7a5b2d8460c4e1"
READ = {"Authorization": f"Bearer {ADMIN}"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def bearer(namespace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ingest_token(KEY, namespace)}"}


async def start(aiohttp_client: Client, **fields: Any) -> Any:
    settings = make_settings(auth={"admin_token": ADMIN, "ingest_key": KEY}, collection_interval=3600, **fields)
    client = await aiohttp_client(init_app(settings))
    # Discovery sees the agent "billing" in team-a (as in tests/monitoring/test_security.py).
    client.app[COLLECTOR].register("billing-7f9.team-a", "http://127.0.0.1:9/m", source="discovery",
                                   info={"namespace": "team-a", "agent": "billing"})
    return client


def export_spans(endpoint: str, namespace: str, spans: list[tuple[str, dict[str, Any]]]) -> str:
    """Spans (name, attributes) of one trace of the service `intruder-svc`, sent by the SDK's exporter with
    the namespace's token; the trace id in hex."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"{namespace}-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers={
        "Authorization": f"Bearer {ingest_token(KEY, namespace)}"})))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("root") as root:
        for name, attributes in spans:
            with tracer.start_as_current_span(name, attributes=attributes):
                pass
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000}


async def test_a_span_naming_another_namespaces_agent_is_refused(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    endpoint = str(client.make_url("/v1/traces"))
    forged = await asyncio.to_thread(export_spans, endpoint, "team-b", [
        ("chat", {**CALL, "gen_ai.agent.name": "billing"}), ("chat", {**CALL, "gen_ai.agent.name": "helper"})])
    analysis = await (await client.get(f"/api/v1/traces/{forged}", headers=READ)).json()
    assert "billing" not in analysis["agents"]  # the forged span is refused; the others are kept
    assert analysis["agents"]["helper"]["namespaces"] == ["team-b"]
    assert (await (await client.get("/api/v1/traces?agent_id=billing", headers=READ)).json())["traces"] == []
    own = await asyncio.to_thread(export_spans, endpoint, "team-a", [("chat", {**CALL, "gen_ai.agent.name": "billing"})])
    analysis = await (await client.get(f"/api/v1/traces/{own}", headers=READ)).json()
    assert analysis["agents"]["billing"]["namespaces"] == ["team-a"]

    # The JSON span API: naming the agent when starting or when finishing.
    named = {"operation": "chat", "agent_id": "intruder", "metadata": {"gen_ai.agent.name": "billing"}}
    refused = await client.post("/api/v1/spans", json=named, headers=bearer("team-b"))
    assert refused.status == 403 and "team-a" in (await refused.json())["error"]
    started = await client.post("/api/v1/spans", json={"operation": "chat", "agent_id": "intruder"},
                                headers=bearer("team-b"))
    assert started.status == 201
    span_id = (await started.json())["span_id"]
    finish = await client.post(f"/api/v1/spans/{span_id}/finish", json={"metadata": {
        "gen_ai.agent.id": "billing", "gen_ai.usage.input_tokens": 5000}}, headers=bearer("team-b"))
    assert finish.status == 403
    assert (await client.post(f"/api/v1/spans/{span_id}/finish", json={}, headers=bearer("team-b"))).status == 200


async def test_metric_points_naming_another_namespaces_agent_are_refused(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    usage = export([{"sum": 900, **CHAT, "gen_ai.token.type": "input", "gen_ai.agent.name": "billing"},
                    {"sum": 7, **CHAT, "gen_ai.token.type": "input"}], service="intruder")
    response = await client.post("/v1/metrics", data=usage.SerializeToString(), headers={**PROTOBUF,
                                                                                         **bearer("team-b")})
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(await response.read())
    assert response.status == 200 and answer.partial_success.rejected_data_points == 1
    own = export([{"sum": 40, **CHAT, "gen_ai.token.type": "input", "gen_ai.agent.name": "billing"}])
    assert (await client.post("/v1/metrics", data=own.SerializeToString(),
                              headers={**PROTOBUF, **bearer("team-a")})).status == 200
    usage_view = await (await client.get("/api/v1/genai/usage", headers=READ)).json()
    assert usage_view["namespaces"]["team-a"]["billing"]["gpt-4o"]["tokens"] == {"input": 40}
    assert usage_view["namespaces"]["team-b"] == {"intruder": {"gpt-4o": {"tokens": {"input": 7}, "calls": {},
                                                                          "seconds": {}}}}
    assert usage_view["agents"]["billing"]["gpt-4o"]["tokens"] == {"input": 40}
    text = await (await client.get("/metrics")).text()
    assert 'monitoring_genai_client_tokens_total{agent_id="billing",model="gpt-4o",namespace="team-a",' \
           'token_type="input"} 40.0' in text
    assert 'monitoring_genai_client_tokens_total{agent_id="intruder",model="gpt-4o",namespace="team-b",' \
           'token_type="input"} 7.0' in text


async def test_an_agent_remote_write_bound_is_held_to_its_namespace_too(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings(source="remote_write",
                                                         auth={"admin_token": ADMIN, "ingest_key": KEY})))
    stamp = int(client.app[COLLECTOR].clock() * 1000)
    body = write_request([(agent("up", "planner", "team-a"), [(1, stamp)])])
    assert (await client.post("/api/v1/write", data=body, headers={**REMOTE_WRITE_HEADERS,
                                                                   **bearer("team-a")})).status == 204
    usage = export([{"sum": 900, **CHAT, "gen_ai.token.type": "input", "gen_ai.agent.name": "planner"}])
    response = await client.post("/v1/metrics", data=usage.SerializeToString(), headers={**PROTOBUF,
                                                                                         **bearer("team-b")})
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(await response.read())
    assert answer.partial_success.rejected_data_points == 1
    refused = await client.post("/api/v1/spans", json={"operation": "x", "agent_id": "planner"},
                                headers=bearer("team-b"))
    assert refused.status == 403


async def test_metric_bodies_beyond_the_label_limits_are_refused_whole(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings(label_limit=10, label_value_length_limit=100,
                                                         tracing={"max_metric_attribute_bytes": 4096})))
    fine = {"sum": 5, **CHAT, "gen_ai.token.type": "input"}
    cases = {
        "label_value_length": [fine, {**fine, "user": "u" * 101}],
        "label_limit": [fine, {**fine, **{f"a{index}": "v" for index in range(8)}}],
        "label_bytes": [fine] + [{**fine, "n": str(index), "pad": "p" * 90} for index in range(40)],
    }
    for reason, points in cases.items():
        response = await client.post("/v1/metrics", data=export([dict(point) for point in points]).SerializeToString(),
                                     headers=PROTOBUF)  # (export() takes the points apart)
        assert response.status == 400, reason
        assert "refused whole" in (await response.json())["error"]
        assert (await (await client.get("/api/v1/genai/usage")).json())["agents"] == {}, reason
        text = await (await client.get("/metrics")).text()
        assert f'monitoring_bodies_refused_total{{reason="{reason}",source="otlp_metrics"}} 1.0' in text, reason
    assert (await client.post("/v1/metrics", data=export([fine]).SerializeToString(), headers=PROTOBUF)).status == 200
