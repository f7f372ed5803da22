"""Tracer figures: ingestion rate (in-process and over OTLP/HTTP), finish-span cost at 10,000 live
traces against a linear-scan baseline, analysis times by trace shape (1,000 and 10,000 spans), and
the latency of /health/live while the service analyses 10,000-span chains.

    .venv/bin/python benchmarks/tracer.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from monitoring.tracing.analysis import analyze  # noqa: E402
from monitoring.tracing.model import Tracer  # noqa: E402
from monitoring.tracing.spans import Span, Trace, new_span_id, new_trace_id  # noqa: E402


def in_process_rate(traces: int = 2_000, spans_per_trace: int = 100) -> float:
    spans = []
    for _ in range(traces):
        trace_id, parent = new_trace_id(), None
        for index in range(spans_per_trace):
            span_id = new_span_id()
            spans.append(Span(trace_id, span_id, "op", f"agent-{index % 7}", index, parent_id=parent, end=index + 1))
            parent = parent or span_id
    tracer = Tracer(max_traces=traces, max_spans_per_trace=spans_per_trace)
    started = time.perf_counter()
    for span in spans:
        tracer.add(span, "otlp")
    return len(spans) / (time.perf_counter() - started)


def finish_costs(live_traces: int = 10_000) -> tuple[float, float]:
    """Microseconds per finish_span: the indexed tracer vs scanning every trace for the span."""
    tracer = Tracer(max_traces=live_traces)
    ids = [tracer.start_trace(None, "op", "agent") for _ in range(live_traces)]
    random.shuffle(ids)
    started = time.perf_counter()
    for span_id in ids:
        tracer.finish_span(span_id)
    indexed = (time.perf_counter() - started) / len(ids) * 1e6

    def scan_finish(span_id: str) -> None:  # the seed's approach: look through every span of every trace
        for trace in tracer.traces.values():
            for span in trace.spans.values():
                if span.span_id == span_id:
                    return

    sample = ids[:200]
    started = time.perf_counter()
    for span_id in sample:
        scan_finish(span_id)
    scanned = (time.perf_counter() - started) / len(sample) * 1e6
    return indexed, scanned


SHAPES = ("nested chain", "chain of hand-offs", "wide fan-out", "many roots", "random tree (GenAI)")
GENAI_KINDS = ({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "agent-{n}"},
               {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300},
               {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
               {"http.request.method": "POST"})


def shape_trace(shape: str, spans: int) -> Trace:
    """A worst-case shape: a deep chain (nested, or each callee outliving its caller), one parent
    with every other span as a child, unrelated spans; or a random tree of agents, model calls and
    tools with GenAI attributes (each span under one of the 200 latest)."""
    trace = Trace(new_trace_id())
    parent: str | None = None
    nodes: list[Span] = []
    for index in range(spans):
        attributes: dict[str, object] = {}
        if shape == "nested chain":
            start, end, parent_id = float(index), float(2 * spans - index), parent
        elif shape == "chain of hand-offs":
            start, end, parent_id = float(index), index + 1.5, parent
        elif shape == "wide fan-out":
            start, end = (0.0, float(spans)) if index == 0 else (random.uniform(0, spans), float(spans))
            parent_id = None if index == 0 else parent
        elif shape == "many roots":
            start = random.uniform(0, spans)
            end, parent_id = start + random.uniform(0, 10), None
        else:
            above = random.choice(nodes[-200:]) if nodes else None
            low, high = (above.start, above.end or 0.0) if above else (0.0, 1000.0)
            start = low + random.uniform(0, high - low) * 0.5 if above else low
            end = start + random.uniform(0, high - start) if above else high
            parent_id = above.span_id if above else None
            kind = GENAI_KINDS[index % len(GENAI_KINDS)]
            attributes = {key: value.format(n=index % 20) if isinstance(value, str) else value
                          for key, value in kind.items()}
        span = Span(trace.trace_id, new_span_id(), "op", f"agent-{index % 20}", start, parent_id=parent_id, end=end,
                    attributes=attributes)
        trace.add_span(span)
        nodes.append(span)
        if shape != "wide fan-out" or index == 0:
            parent = span.span_id
    return trace


def shape_analysis_time(shape: str, spans: int) -> float:
    """Seconds to analyse one trace of the given shape and size (best of three)."""
    trace = shape_trace(shape, spans)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        analyze(trace)
        best = min(best, time.perf_counter() - started)
    return best


def export_request(batch: int, chain: bool = False) -> bytes:
    """One OTLP export of `batch` spans of a new trace (flat, or a chain of nested spans)."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    attribute = resource.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "bench-agent"
    scope = resource.scope_spans.add()
    trace_id = bytes.fromhex(new_trace_id())
    parent = b""
    for index in range(batch):
        span = scope.spans.add()
        span.trace_id, span.span_id = trace_id, bytes.fromhex(new_span_id())
        span.name = "execute_tool"
        if chain:
            span.parent_span_id, parent = parent, span.span_id
            span.start_time_unix_nano, span.end_time_unix_nano = index * 1000, (2 * batch - index) * 1000
        else:
            span.start_time_unix_nano, span.end_time_unix_nano = index * 1000, index * 1000 + 500
    return request.SerializeToString()


@contextlib.asynccontextmanager
async def running_service(env: dict[str, str]) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """The monitoring service in its own process (on its own core when there are two), once ready."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    service = subprocess.Popen([sys.executable, "-m", "monitoring", "--port", str(port), "--log-level", "WARNING"],
                               cwd=PROJECT_DIR, env={**os.environ, **env})
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(service.pid, {1})
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"{url}/health/ready") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            yield session, url
    finally:
        service.terminate()
        service.wait(timeout=10)


async def otlp_rate(requests: int = 1_500, batch: int = 512, concurrency: int = 4) -> float:
    """Spans/s the service ingests over OTLP/HTTP: `requests` distinct protobuf exports, each sent once."""
    bodies = [export_request(batch) for _ in range(requests)]  # one new trace per request, built untimed
    env = {"MONITORING_TRACING__MAX_SPANS_PER_TRACE": str(batch), "MONITORING_TRACING__MAX_TRACES": str(requests)}
    async with running_service(env) as (session, url):
        async def worker(offset: int) -> None:
            for body in bodies[offset::concurrency]:
                async with session.post(f"{url}/v1/traces", data=body,
                                        headers={"Content-Type": "application/x-protobuf"}) as response:
                    assert response.status == 200, await response.text()

        started = time.perf_counter()
        await asyncio.gather(*(worker(offset) for offset in range(concurrency)))
        elapsed = time.perf_counter() - started
        async with session.get(f"{url}/metrics") as response:
            text = await response.text()
        received = next(line for line in text.splitlines()
                        if line.startswith('monitoring_spans_received_total{source="otlp"}'))
        assert float(received.split()[-1]) == requests * batch, received
        return requests * batch / elapsed


async def health_while_analysing(chains: int = 5, spans: int = 10_000) -> tuple[list[float], float]:
    """Latencies of /health/live (sorted) probed every 5 ms while the service analyses `chains` uncached
    chains of `spans` spans one after the other, and the slowest of those analyses as the client saw it."""
    bodies = [export_request(spans, chain=True) for _ in range(chains)]
    async with running_service({}) as (session, url):
        trace_ids = []
        for body in bodies:
            async with session.post(f"{url}/v1/traces", data=body,
                                    headers={"Content-Type": "application/x-protobuf"}) as response:
                assert response.status == 200, await response.text()
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            trace_ids.append(request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex())
        latencies: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with session.get(f"{url}/health/live") as response:
                    assert response.status == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.005)

        prober = asyncio.create_task(probe())
        slowest = 0.0
        for trace_id in trace_ids:
            started = time.perf_counter()
            async with session.get(f"{url}/api/v1/traces/{trace_id}") as response:
                analysis = await response.json()
            slowest = max(slowest, time.perf_counter() - started)
            assert analysis["critical_path_span_count"] == spans, analysis.get("critical_path_span_count")
        done.set()
        await prober
        return sorted(latencies), slowest


def main() -> int:
    random.seed(7)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    print(f"in-process ingestion          {in_process_rate():>12,.0f} spans/s")
    print(f"OTLP/HTTP ingestion (protobuf) {asyncio.run(otlp_rate()):>11,.0f} spans/s  "
          f"(batches of 512, service on its own core)")
    indexed, scanned = finish_costs()
    print(f"finish_span at 10,000 live traces: {indexed:.2f} us indexed vs {scanned:,.0f} us linear scan "
          f"({scanned / indexed:,.0f}x)")
    print("analysis by shape (ms, best of 3)  1,000 spans  10,000 spans")
    for shape in SHAPES:
        print(f"  {shape:<31} {shape_analysis_time(shape, 1_000) * 1000:>11.1f} "
              f"{shape_analysis_time(shape, 10_000) * 1000:>13.1f}")
    latencies, analysis = asyncio.run(health_while_analysing())
    print(f"/health/live while 10,000-span chains are analysed: p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms over {len(latencies)} probes "
          f"(GET of an uncached chain analysis: {analysis * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
