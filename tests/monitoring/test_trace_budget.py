"""The tracer's memory in bytes (per-span caps, a budget with the oldest traces going first), the
analysis cache, and analyses of large traces off the event loop."""

from __future__ import annotations

import asyncio
import sys
import tracemalloc

import pytest

from monitoring.tracing.analyst import Analyst, AnalystBusy
from monitoring.tracing.budget import SpanLimits
from monitoring.tracing.model import Tracer
from monitoring.tracing.spans import Span, SpanEvent, TraceLimitError, new_span_id, new_trace_id


def finished(trace_id: str, span_id: str | None = None, parent: str | None = None, **attributes: object) -> Span:
    return Span(trace_id, span_id or new_span_id(), "op", "agent", 0.0, parent_id=parent, end=1.0,
                attributes=dict(attributes))


def test_caps_cut_values_attributes_and_events_and_count_what_they_cut() -> None:
    tracer = Tracer(limits=SpanLimits(max_attributes=3, max_value_length=10, max_events=1, max_links=0))
    item = finished(new_trace_id(), a="x" * 50, b=["y" * 20, 1], c=1, d=2, e=3)
    item.events = (SpanEvent("exception", 0.5, {"exception.message": "z" * 30}), SpanEvent("later", 0.6, {}))
    tracer.add(item, "otlp")
    assert item.attributes == {"a": "x" * 10, "b": ["y" * 10, 1], "c": 1}
    assert [event.name for event in item.events] == ["exception"]
    assert item.events[0].attributes["exception.message"] == "z" * 10
    assert tracer.stats.truncated_attributes == 3 and tracer.stats.dropped_attributes == 2 + 1


def test_the_byte_budget_drops_the_oldest_traces_first() -> None:
    tracer = Tracer(max_bytes=2**20)
    first, second = new_trace_id(), new_trace_id()
    big = {f"note{index}": "a" * 4000 for index in range(3)}  # larger than a filler span: one drop makes room
    tracer.add(finished(first, **big), "otlp")
    tracer.add(finished(second, **big), "otlp")
    filler = new_trace_id()
    while first in tracer.traces:
        tracer.add(finished(filler, note="c" * 4000), "otlp")
    assert second in tracer.traces and tracer.stats.dropped_traces_bytes == 1
    assert tracer.bytes <= tracer.max_bytes
    assert tracer.bytes == sum(trace.bytes for trace in tracer.traces.values())


def test_a_span_that_cannot_fit_is_refused_and_counted() -> None:
    tracer = Tracer(max_bytes=2**20, limits=SpanLimits(max_value_length=2**20))
    trace_id = new_trace_id()
    with pytest.raises(TraceLimitError, match="byte trace budget"):
        tracer.add(finished(trace_id, blob="x" * (2**20 + 1)), "otlp")
    assert tracer.stats.dropped_spans_bytes == 1 and trace_id not in tracer.traces and tracer.bytes == 0


def test_the_estimate_is_of_the_order_of_what_python_holds() -> None:
    """The budget is an estimate: within a factor of two of what tracemalloc sees for typical spans."""
    spans = [Span(new_trace_id(), new_span_id(), "chat gpt-4o", "planner", 0.0, end=1.0,
                  attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                              "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
                              "gen_ai.prompt": "p" * 2000}) for _ in range(2000)]
    tracer = Tracer(max_traces=10_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for item in spans:
        tracer.add(item, "otlp")
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    held += sum(sys.getsizeof(item) + sum(sys.getsizeof(value) for value in item.attributes.values())
                + sys.getsizeof(item.attributes) + sys.getsizeof(item.span_id) + sys.getsizeof(item.trace_id)
                for item in spans)  # built before tracing started, but the tracer holds them
    assert 0.5 < tracer.bytes / held < 2, (tracer.bytes, held)


def test_finishing_with_metadata_replaces_the_attributes_and_updates_bytes_and_facts() -> None:
    tracer = Tracer()
    span_id = tracer.start_trace(None, "chat", "agent", {"gen_ai.operation.name": "chat"})
    item = tracer.span(span_id)
    assert item is not None
    before_attributes, before_bytes = item.attributes, tracer.bytes
    tracer.finish_span(span_id, metadata={"gen_ai.usage.input_tokens": 9, "note": "n" * 500})
    assert before_attributes == {"gen_ai.operation.name": "chat"}  # a snapshot's copy is never changed
    assert item.genai.usage is not None and item.genai.usage[0] == 9
    assert tracer.bytes > before_bytes + 500


def test_analyses_are_cached_until_the_trace_changes() -> None:
    tracer = Tracer()
    span_id = tracer.start_trace("t" * 32, "plan", "agent")
    first = tracer.get_trace_analysis("t" * 32)
    assert tracer.get_trace_analysis("t" * 32) is first
    tracer.finish_span(span_id)
    second = tracer.get_trace_analysis("t" * 32)
    assert second is not first and second is not None and second["complete"]


def chain(tracer: Tracer, spans: int) -> str:
    trace_id, parent = new_trace_id(), None
    for index in range(spans):
        span_id = new_span_id()
        tracer.add(Span(trace_id, span_id, "hop", f"agent-{index % 3}", float(index), parent_id=parent,
                        end=index + 1.5), "otlp")
        parent = span_id
    return trace_id


async def test_large_analyses_run_off_the_loop_and_are_shared() -> None:
    tracer = Tracer()
    analyst = Analyst(tracer, inline_spans=100)
    trace = tracer.traces[chain(tracer, 3_000)]
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        task = asyncio.create_task(ticker())
        first, second = await asyncio.gather(analyst.analysis(trace), analyst.analysis(trace))
        task.cancel()
        assert first is second and first["critical_path_span_count"] == 3_000
        assert ticks > 0  # the loop ran while the worker analysed
        assert await analyst.analysis(trace) is first  # cached
    finally:
        analyst.close()


async def test_too_many_waiting_analyses_are_refused() -> None:
    tracer = Tracer()
    analyst = Analyst(tracer, inline_spans=10, max_pending=1)
    traces = [tracer.traces[chain(tracer, 2_000)] for _ in range(2)]
    try:
        first = asyncio.ensure_future(analyst.analysis(traces[0]))
        await asyncio.sleep(0)  # the first is now waiting for the worker
        with pytest.raises(AnalystBusy):
            await analyst.analysis(traces[1])
        assert (await first)["span_count"] == 2_000
    finally:
        analyst.close()


def test_finishing_with_metadata_stays_within_the_budget() -> None:
    tracer = Tracer(max_bytes=2**20)
    ids = [tracer.start_trace(None, "op", "agent") for _ in range(100)]
    for span_id in ids:
        tracer.finish_span(span_id, metadata={f"k{index}": "v" * 4000 for index in range(20)})
    assert tracer.bytes <= tracer.max_bytes
    assert tracer.bytes == sum(trace.bytes for trace in tracer.traces.values())
    assert tracer.stats.dropped_traces_bytes > 0


def test_a_span_that_can_never_fit_drops_nothing_else() -> None:
    tracer = Tracer(max_bytes=2**20)
    for _ in range(50):
        tracer.add(finished(new_trace_id()), "otlp")
    huge = finished(new_trace_id(), **{f"k{index}": "v" * 4000 for index in range(128)})
    huge.events = tuple(SpanEvent("e", 0.5, {f"a{index}": "x" * 100 for index in range(128)}) for _ in range(128))
    with pytest.raises(TraceLimitError):
        tracer.add(huge, "otlp")
    assert len(tracer.traces) == 50 and tracer.stats.dropped_traces_bytes == 0


def test_completion_records_of_dropped_traces_do_not_pile_up() -> None:
    tracer = Tracer(max_traces=100)
    for _ in range(20_000):
        tracer.add(finished(new_trace_id()), "otlp")
    assert len(tracer._completed) <= 2 * len(tracer.traces) + 1024  # noqa: SLF001
