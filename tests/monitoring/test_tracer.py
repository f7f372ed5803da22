"""The tracer: span lifecycle, W3C context, critical path, bounds, OTLP ingestion, and the real OTel SDK."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.app import init_app
from monitoring.tracing.analysis import analyze
from monitoring.tracing.critical_path import critical_path
from monitoring.tracing.model import Tracer
from monitoring.tracing.spans import Span, Trace, TraceLimitError
from monitoring.tracing.traceparent import format_traceparent, parse_traceparent

from .conftest import make_settings

Client = Callable[..., Any]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def span(span_id: str, start: float, end: float, parent: str | None = None, agent: str = "a",
         operation: str = "op", **attributes: Any) -> Span:
    return Span(TRACE, span_id, operation, agent, start, parent_id=parent, end=end, attributes=attributes)


def trace_of(*spans: Span) -> Trace:
    trace = Trace(TRACE)
    for item in spans:
        trace.add_span(item)
    return trace


def path_of(trace: Trace) -> list[tuple[str, float]]:
    return [(item["span_id"], item["time_on_path_seconds"]) for item in analyze(trace)["critical_path_spans"]]


# --- span lifecycle ----------------------------------------------------------------------------

def test_seed_api_with_parents_and_finish_once() -> None:
    clock = Clock()
    tracer = Tracer(clock=clock)
    root = tracer.start_trace(TRACE, "plan", "coordinator", {"user": "u1"})
    child = tracer.start_trace(TRACE, "search", "researcher", parent_span_id=root)
    clock.now += 2
    assert tracer.finish_span(child, "ok", {"results": 3})
    clock.now += 1
    assert tracer.finish_span(root)
    assert not tracer.finish_span(root)             # twice: warned and counted, no exception
    assert not tracer.finish_span("0000000000000000")  # unknown: the same
    assert (tracer.stats.finish_duplicate, tracer.stats.finish_unknown) == (1, 1)
    analysis = tracer.get_trace_analysis(TRACE)
    assert analysis is not None and analysis["complete"] and analysis["total_duration_seconds"] == 3.0
    assert analysis["agents"]["researcher"]["total_time_seconds"] == 2.0
    assert tracer.traces[TRACE].spans[child].attributes == {"results": 3}


def test_traceparent_round_trip_and_invalid_headers() -> None:
    header = format_traceparent(TRACE, "00f067aa0ba902b7")
    assert header == f"00-{TRACE}-00f067aa0ba902b7-01"
    context = parse_traceparent(header)
    assert context is not None and (context.trace_id, context.span_id, context.sampled) == (
        TRACE, "00f067aa0ba902b7", True)
    assert context.header() == header
    for bad in (None, "", "garbage", f"00-{'0' * 32}-00f067aa0ba902b7-01", f"00-{TRACE}-{'0' * 16}-01",
                f"ff-{TRACE}-00f067aa0ba902b7-01", f"00-{TRACE}-00f067aa0ba902b7-01-extra"):
        assert parse_traceparent(bad) is None
    assert parse_traceparent(f"01-{TRACE}-00f067aa0ba902b7-00-future") is not None  # later versions may extend


# --- critical path -----------------------------------------------------------------------------

def test_critical_path_sequential_children() -> None:
    trace = trace_of(span("root", 0, 10), span("a", 1, 4, "root"), span("b", 4, 9, "root"))
    assert path_of(trace) == [("root", 2.0), ("a", 3.0), ("b", 5.0)]
    assert analyze(trace)["critical_path_duration_seconds"] == 10.0


def test_critical_path_parallel_children_only_the_last_to_finish() -> None:
    trace = trace_of(span("root", 0, 10), span("fast", 0, 4, "root"), span("slow", 0, 9, "root"))
    assert path_of(trace) == [("slow", 9.0), ("root", 1.0)]


def test_critical_path_nested_and_overlapping() -> None:
    trace = trace_of(span("root", 0, 20),
                     span("plan", 0, 5, "root"),
                     span("fanout", 5, 18, "root"),
                     span("w1", 6, 12, "fanout"), span("w2", 6, 16, "fanout"),
                     span("w2-llm", 7, 15, "w2"),
                     span("late", 17, 25, "root"))  # outlives its parent: counts after the root ends
    assert path_of(trace) == [("plan", 5.0), ("fanout", 2.0), ("w2", 2.0), ("w2-llm", 8.0), ("late", 8.0)]
    assert analyze(trace)["critical_path_duration_seconds"] == 25.0 == analyze(trace)["total_duration_seconds"]


def test_span_started_after_its_parent_ended_hangs_under_a_running_ancestor() -> None:
    # The coordinator's LLM call hands off to the researcher and returns; the researcher works on.
    trace = trace_of(span("root", 0, 10), span("chat", 0, 2, "root"), span("research", 2, 9, "chat"))
    assert path_of(trace) == [("chat", 2.0), ("research", 7.0), ("root", 1.0)]


def test_critical_path_with_several_roots_and_a_deep_chain() -> None:
    spans = [span(f"s{index}", index, 10_000 - index, f"s{index - 1}" if index else None) for index in range(5_000)]
    trace = trace_of(*spans, span("other-root", 0, 20_000))
    result = analyze(trace)  # no recursion limit on deep traces
    assert result["critical_path_spans"] == [{"span_id": "other-root", "agent_id": "a", "operation": "op", "start": 0,
                                        "end": 20_000, "duration_seconds": 20_000, "time_on_path_seconds": 20_000.0}]
    chain = trace_of(*spans)
    assert analyze(chain)["critical_path_duration_seconds"] == 10_000.0
    assert len(critical_path(list(chain.spans.values()))) == 2 * 5_000 - 1


def test_analysis_reports_agents_errors_tokens_tools_and_longest() -> None:
    trace = trace_of(
        span("root", 0, 10, agent="coordinator", operation="invoke_agent coordinator",
             **{"gen_ai.operation.name": "invoke_agent"}),
        span("llm", 1, 6, "root", agent="coordinator", operation="chat",
             **{"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300}),
        span("tool", 6, 8, "root", agent="researcher", operation="execute_tool web_search",
             **{"gen_ai.operation.name": "execute_tool", "error.message": "rate limited"}))
    trace.spans["tool"].status = "error"
    result = analyze(trace)
    coordinator, researcher = result["agents"]["coordinator"], result["agents"]["researcher"]
    assert (coordinator["spans"], coordinator["input_tokens"], coordinator["output_tokens"]) == (2, 1200, 300)
    assert coordinator["agent_invocations"] == 1 and coordinator["operations"] == ["chat", "invoke_agent coordinator"]
    assert (researcher["tool_calls"], researcher["errors"]) == (1, 1)
    assert result["errors"] == [{"span_id": "tool", "agent_id": "researcher", "operation": "execute_tool web_search",
                                 "message": "rate limited", "error_type": None}]
    assert [item["span_id"] for item in result["longest_spans"]] == ["root", "llm", "tool"]
    assert result["average_span_duration_seconds"] == round((10 + 5 + 2) / 3, 6)


# --- bounds ------------------------------------------------------------------------------------

def test_finished_traces_are_evicted_after_retention() -> None:
    clock = Clock()
    tracer = Tracer(retention_seconds=60, clock=clock)
    root = tracer.start_trace(TRACE, "op", "a")
    tracer.add(span("done", 0, 1), source="otlp")  # already-finished span in the same trace
    tracer.finish_span(root)
    clock.now += 59
    assert tracer.evict() == 0
    clock.now += 2
    assert tracer.evict() == 1 and TRACE not in tracer.traces and tracer.live_spans == 0
    assert tracer.stats.evicted_traces == 1


def test_new_span_keeps_a_trace_alive() -> None:
    clock = Clock()
    tracer = Tracer(retention_seconds=60, clock=clock)
    tracer.finish_span(tracer.start_trace(TRACE, "op", "a"))
    clock.now += 30
    late = tracer.start_trace(TRACE, "late", "b")
    clock.now += 40
    assert tracer.evict() == 0  # still open
    tracer.finish_span(late)
    clock.now += 61
    assert tracer.evict() == 1


def test_live_trace_and_span_limits() -> None:
    tracer = Tracer(max_traces=3, max_spans_per_trace=2)
    ids = [tracer.start_trace(None, "op", "a") for _ in range(5)]
    assert len(tracer.traces) == 3 and tracer.stats.dropped_traces == 2
    assert not tracer.finish_span(ids[0])  # its trace was dropped: unknown now
    trace_id = next(iter(tracer.traces))
    tracer.start_trace(trace_id, "op", "a")
    with pytest.raises(TraceLimitError):
        tracer.start_trace(trace_id, "op", "a")
    assert tracer.stats.dropped_spans == 1


# --- HTTP API ----------------------------------------------------------------------------------

async def test_json_span_api_and_queries(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    started = await client.post("/api/v1/spans", json={"operation": "plan", "agent_id": "coordinator"})
    assert started.status == 201
    root = await started.json()
    child = await (await client.post("/api/v1/spans", json={
        "operation": "search", "agent_id": "researcher", "traceparent": root["traceparent"]})).json()
    assert child["trace_id"] == root["trace_id"]
    assert (await client.post(f"/api/v1/spans/{child['span_id']}/finish", json={"status": "error"})).status == 200
    assert (await client.post(f"/api/v1/spans/{root['span_id']}/finish", json={})).status == 200
    again = await client.post(f"/api/v1/spans/{root['span_id']}/finish", json={})
    assert again.status == 409 and "already finished" in (await again.json())["error"]
    analysis = await (await client.get(f"/api/v1/traces/{root['trace_id']}")).json()
    assert analysis["complete"] and analysis["agents"]["researcher"]["errors"] == 1
    assert analysis["critical_path_spans"][0]["span_id"] in (root["span_id"], child["span_id"])
    listed = await (await client.get("/api/v1/traces?agent_id=researcher")).json()
    assert [item["trace_id"] for item in listed["traces"]] == [root["trace_id"]]
    assert (await (await client.get("/api/v1/traces?agent_id=nobody")).json())["traces"] == []
    assert (await client.get("/api/v1/traces/" + "f" * 32)).status == 404
    bad = await client.post("/api/v1/spans", json={"operation": "x", "agent_id": "a", "traceparent": "nope"})
    assert bad.status == 422


def otlp_json(spans: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                            "value": {"stringValue": service}}]},
                               "scopeSpans": [{"spans": spans}]}]}


async def test_otlp_json_encoding_with_hex_ids_and_gzip(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    body = otlp_json([{"traceId": TRACE, "spanId": "00f067aa0ba902b7", "name": "invoke_agent planner",
                       "startTimeUnixNano": "1000000000", "endTimeUnixNano": "3000000000",
                       "status": {"code": 2, "message": "boom"},
                       "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}}]}], "planner")
    response = await client.post("/v1/traces", data=gzip.compress(json.dumps(body).encode()),
                                 headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status == 200, await response.text()
    assert await response.json() == {}
    analysis = await (await client.get(f"/api/v1/traces/{TRACE}")).json()
    assert analysis["agents"]["planner"]["input_tokens"] == 42
    assert analysis["errors"][0]["message"] == "boom"
    assert analysis["total_duration_seconds"] == 2.0


async def test_otlp_rejects_garbage_and_oversize(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings(tracing={"max_otlp_bytes": 2048})))
    garbage = await client.post("/v1/traces", data=b"\xff\x00garbage",
                                headers={"Content-Type": "application/x-protobuf"})
    assert garbage.status == 400 and "invalid OTLP" in (await garbage.json())["error"]
    bomb = gzip.compress(b"0" * 100_000)  # small on the wire, large inflated
    too_big = await client.post("/v1/traces", data=bomb, headers={"Content-Type": "application/x-protobuf",
                                                                  "Content-Encoding": "gzip"})
    assert too_big.status == 413
    text_plain = await client.post("/v1/traces", data=b"x", headers={"Content-Type": "text/plain"})
    assert text_plain.status == 415


async def test_tracer_metrics(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    started = await (await client.post("/api/v1/spans", json={"operation": "x", "agent_id": "a"})).json()
    await client.post(f"/api/v1/spans/{started['span_id']}/finish", json={})
    await client.post(f"/api/v1/spans/{started['span_id']}/finish", json={})
    await client.get(f"/api/v1/traces/{started['trace_id']}")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(await (await client.get("/metrics")).text())
               for s in family.samples}
    assert samples[("monitoring_spans_received_total", (("source", "api"),))] == 1
    assert samples[("monitoring_traces_live", ())] == 1
    assert samples[("monitoring_span_finish_errors_total", (("reason", "duplicate"),))] == 1
    assert samples[("monitoring_trace_analysis_seconds_count", ())] == 1


# --- the real OpenTelemetry SDK ----------------------------------------------------------------

def run_two_agents(endpoint: str) -> str:
    """Two "agents" (separate service.name) with nested spans; context crosses via a traceparent header."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )

    def provider(name: str) -> TracerProvider:
        tracer_provider = TracerProvider(resource=Resource.create({"service.name": name}))
        tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=10)))
        return tracer_provider

    coordinator, researcher = provider("coordinator"), provider("researcher")
    propagator = TraceContextTextMapPropagator()
    import time as clock

    with coordinator.get_tracer("agent").start_as_current_span(
            "invoke_agent coordinator", attributes={"gen_ai.operation.name": "invoke_agent"}) as root:
        with coordinator.get_tracer("agent").start_as_current_span(
                "chat", attributes={"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}):
            clock.sleep(0.05)
            headers: dict[str, str] = {}
            propagator.inject(headers)  # what the coordinator sends to the researcher
        context = propagator.extract(headers)
        with researcher.get_tracer("agent").start_as_current_span(
                "research", context=context, kind=SpanKind.SERVER, links=[Link(root.get_span_context())]):
            with researcher.get_tracer("agent").start_as_current_span(
                    "execute_tool web_search", attributes={"gen_ai.operation.name": "execute_tool"}) as tool:
                clock.sleep(0.2)
                tool.record_exception(TimeoutError("search took too long"))
                tool.set_status(Status(StatusCode.ERROR, "rate limited"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    coordinator.shutdown()
    researcher.shutdown()
    return trace_id


async def test_opentelemetry_sdk_exports_to_the_service(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    endpoint = str(client.make_url("/v1/traces"))
    trace_id = await asyncio.to_thread(run_two_agents, endpoint)  # the SDK's exporter is blocking
    analysis = await (await client.get(f"/api/v1/traces/{trace_id}")).json()
    assert analysis["span_count"] == 4 and analysis["complete"]
    coordinator, researcher = analysis["agents"]["coordinator"], analysis["agents"]["researcher"]
    assert coordinator["operations"] == ["chat", "invoke_agent coordinator"]
    assert (coordinator["input_tokens"], coordinator["output_tokens"], coordinator["agent_invocations"]) == (100, 20, 1)
    assert (researcher["spans"], researcher["tool_calls"], researcher["errors"]) == (2, 1, 1)
    # The researcher's span is a child of the coordinator's chat span (the propagated context).
    path = [item["operation"] for item in analysis["critical_path_spans"]]
    assert "execute_tool web_search" in path and path[0] == "invoke_agent coordinator"
    tool = next(item for item in analysis["critical_path_spans"] if item["operation"] == "execute_tool web_search")
    assert tool["time_on_path_seconds"] >= 0.19
    assert analysis["errors"][0]["message"] == "rate limited"  # the status says it; the exception event names it
    assert analysis["errors"][0]["error_type"] == "TimeoutError"
    assert analysis["links"] == [{"span_id": next(item["span_id"] for item in analysis["critical_path_spans"]
                                                  if item["operation"] == "research"),
                                  "linked_trace_id": trace_id, "linked_span_id": path_ids(analysis)[0]}]


def path_ids(analysis: dict[str, Any]) -> list[str]:
    return [item["span_id"] for item in analysis["critical_path_spans"]]


def test_a_chain_of_hand_offs_is_analysed_whole() -> None:
    """Each callee outlives its caller (asynchronous hand-offs): every span is on the critical path."""
    trace = Trace("chain")
    parent = None
    for index in range(3_000):
        span = Span("chain", f"s{index}", "hand-off", f"agent-{index % 3}", float(index), parent_id=parent,
                    end=index + 1.5, status="ok")
        trace.add_span(span)
        parent = span.span_id
    result = analyze(trace)
    assert result["critical_path_duration_seconds"] == result["total_duration_seconds"] == 3_000.5
    assert result["critical_path_span_count"] == 3_000
    # The listing is bounded: the 1,000 spans with the most time on the path, in time order (the last
    # span's whole 1.5 s; the others 1 s each, of which the earliest win the tie).
    listed = result["critical_path_spans"]
    assert len(listed) == 1_000 and listed[-1]["span_id"] == "s2999" and listed[-1]["time_on_path_seconds"] == 1.5
    assert [item["start"] for item in listed] == sorted(item["start"] for item in listed)


def test_bad_parent_links_and_non_finite_tokens_do_not_break_the_analysis() -> None:
    """A parent cycle, a span that is its own parent, and tokens of inf/NaN/-5 still give an analysis."""
    trace = Trace("bad")
    for span_id, parent, tokens in (("a", "b", float("inf")), ("b", "a", float("nan")), ("c", "c", -5), ("d", None, 7)):
        trace.add_span(Span("bad", span_id, "op", "agent", 0.0, parent_id=parent, end=1.0,
                            attributes={"gen_ai.usage.input_tokens": tokens}))
    result = analyze(trace)
    assert result["agents"]["agent"]["input_tokens"] == 7 and result["completed_spans"] == 4
    assert result["critical_path_duration_seconds"] == 1.0


def test_children_claiming_to_start_before_their_parent_stay_inside_it() -> None:
    """Clock skew between hosts: the path never credits time outside a span or twice."""
    trace = trace_of(span("p", 10, 20), span("c1", 5, 12, "p"), span("c0", 6, 9, "p"))
    segments = [(segment.span.span_id, segment.start, segment.end)
                for segment in critical_path(list(trace.spans.values()))]
    assert segments == [("c1", 10, 12), ("p", 12, 20)]
    assert analyze(trace)["critical_path_duration_seconds"] == 10.0
