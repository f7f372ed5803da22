"""The relay to an upstream trace store: one service forwards every accepted export to a second
service on loopback; retries, a full queue and a refusing upstream are counted, and ingestion
never waits for the upstream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client.parser import text_string_to_metric_families

from monitoring.app import init_app
from monitoring.state import RELAY, TRACER

from .conftest import make_settings


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until `condition` holds (what the test asserts next), or fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def samples(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = await (await client.get("/metrics")).text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def export_spans(endpoint: str, count: int) -> set[str]:
    """Export `count` spans with the OpenTelemetry SDK (one export each); return their span ids."""
    provider = TracerProvider(resource=Resource.create({"service.name": "planner"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    ids = set()
    with provider.get_tracer("test").start_as_current_span("invoke_agent planner"):
        for index in range(count - 1):
            with provider.get_tracer("test").start_as_current_span(f"step {index}") as span:
                ids.add(format(span.get_span_context().span_id, "016x"))
    provider.shutdown()
    return ids


async def test_every_accepted_export_reaches_the_upstream_once(aiohttp_server: Callable[..., Any],
                                                                aiohttp_client: Callable[..., Any]) -> None:
    upstream_app = init_app(make_settings())
    upstream = await aiohttp_server(upstream_app)
    front_app = init_app(make_settings(tracing={"relay": {"endpoint": str(upstream.make_url("")).rstrip("/")}}))
    front = await aiohttp_server(front_app)
    front_url = str(front.make_url("")).rstrip("/")

    span_ids = await asyncio.to_thread(export_spans, front_url, 20)  # the SDK's exporter blocks
    upstream_tracer = upstream_app[TRACER]
    await wait_for(lambda: upstream_tracer.live_spans == 20 and front_app[RELAY].queued == 0)
    assert {span_id for trace in upstream_tracer.traces.values() for span_id in trace.spans} >= span_ids
    assert upstream_tracer.stats.spans_received["otlp"] == 20  # each once: no duplicate forwarding
    front_samples = await samples(await aiohttp_client(front))
    assert front_samples[("monitoring_relay_exports_total", (("signal", "traces"),))] == 20
    assert front_samples[("monitoring_relay_dropped_total", (("reason", "queue_full"),))] == 0


async def test_a_down_upstream_fills_the_bounded_queue_without_slowing_ingestion(
        aiohttp_client: Callable[..., Any]) -> None:
    app = init_app(make_settings(tracing={"relay": {"endpoint": f"http://127.0.0.1:{closed_port()}",
                                                    "max_queue_requests": 2, "max_attempts": 50,
                                                    "max_elapsed": 600}}))
    client = await aiohttp_client(app)
    body = b'{"resourceSpans": []}'
    for _ in range(10):
        response = await client.post("/v1/traces", data=body, headers={"Content-Type": "application/json"})
        assert response.status == 200
    relay = app[RELAY]
    assert relay.stats.dropped["queue_full"] == 8 and relay.queued == 2
    await wait_for(lambda: relay.stats.retries >= 2)  # both are being retried, none given up
    assert relay.stats.dropped["gave_up"] == 0 and relay.stats.forwarded["traces"] == 0


async def test_retryable_answers_are_retried_and_others_dropped(aiohttp_server: Callable[..., Any],
                                                                aiohttp_client: Callable[..., Any]) -> None:
    answers = [web.Response(status=503, headers={"Retry-After": "0"}), web.Response(status=200),
               web.Response(status=400, text="bad")]
    received: list[tuple[str, bytes]] = []

    async def upstream_handler(request: web.Request) -> web.Response:
        received.append((request.path, await request.read()))
        return answers.pop(0)

    upstream_app = web.Application()
    upstream_app.router.add_post("/v1/{signal}", upstream_handler)
    upstream = await aiohttp_server(upstream_app)
    app = init_app(make_settings(tracing={"relay": {"endpoint": str(upstream.make_url("")), "workers": 1,
                                                    "signals": ["traces", "logs"]}}))
    client = await aiohttp_client(app)
    relay = app[RELAY]
    await client.post("/v1/traces", data=b'{"resourceSpans": []}', headers={"Content-Type": "application/json"})
    await wait_for(lambda: relay.stats.forwarded["traces"] == 1)
    assert relay.stats.retries == 1 and [path for path, _ in received] == ["/v1/traces", "/v1/traces"]
    assert received[0][1] == received[1][1] == b'{"resourceSpans": []}'  # unchanged
    await client.post("/v1/metrics", data=b"{}", headers={"Content-Type": "application/json"})  # not relayed
    await client.post("/v1/logs", data=b"{}", headers={"Content-Type": "application/json"})
    await wait_for(lambda: relay.stats.dropped["rejected"] == 1)
    assert [path for path, _ in received][2:] == ["/v1/logs"]


async def test_only_accepted_exports_are_relayed(aiohttp_client: Callable[..., Any]) -> None:
    app = init_app(make_settings(tracing={"relay": {"endpoint": f"http://127.0.0.1:{closed_port()}"}}))
    client = await aiohttp_client(app)
    bad_ids = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab", "spanId": "cd", "name": "x"}]}]}]}
    assert (await client.post("/v1/traces", json=bad_ids)).status == 400
    assert (await client.post("/v1/traces", data=b"{nope", headers={"Content-Type": "application/json"})).status == 400
    assert app[RELAY].queued == 0 and app[RELAY].stats.dropped["queue_full"] == 0
