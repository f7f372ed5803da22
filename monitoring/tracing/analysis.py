"""Trace analysis: durations, per-agent participation (incl. GenAI tokens and tool calls), errors,
the critical path and the longest spans.

Critical path: walking back from the end of a span, the time is attributed to the child
that finished last (clipped to the walk's cursor); the walk then continues before that
child's start, so sequential children chain and parallel children only count through the
one that finished last. Time no child covers is the span's own. Spans that outlive their
parent count under the nearest ancestor still running. The sum of the path is the trace's
end-to-end time.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .spans import STATUS_ERROR, STATUS_OK, STATUS_UNSET, Span, Trace

# OpenTelemetry GenAI semantic conventions.
GENAI_OPERATION = "gen_ai.operation.name"
GENAI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GENAI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOOL_CALL = "execute_tool"
COMPLETED_STATUSES = frozenset({"completed", STATUS_OK, STATUS_UNSET})  # finished without an error
AGENT_CALL = "invoke_agent"


@dataclass
class Segment:
    """A stretch of time on the critical path spent in `span` itself."""

    span: Span
    start: float
    end: float


def _children(spans: list[Span]) -> tuple[dict[str | None, list[Span]], list[Span]]:
    """Children by (effective) parent id, and the roots; O(n log n) for every shape.

    A span that ends after its parent (an asynchronous hand-off: the caller returned before
    the callee finished) hangs under the nearest ancestor still running when it ends, or
    becomes a root; otherwise its time would fall outside every span the walk visits.

    Without hand-offs every span stays under its parent (one pass). With them, a depth-first
    walk keeps, for the current span, the ancestors it could hang under: those that end no
    earlier than every span below them on the path (so their ends never increase towards the
    span). Where a span belongs is a binary search in that stack; below it, the stack is cut
    there and the span pushed, and that is undone when its subtree is done.
    """
    by_id = {span.span_id: span for span in spans}
    kids: dict[str | None, list[Span]] = defaultdict(list)
    hand_offs = False
    for span in spans:
        parent = by_id.get(span.parent_id or "") if span.parent_id != span.span_id else None
        kids[parent.span_id if parent is not None else None].append(span)
        hand_offs = hand_offs or (parent is not None and (parent.end or 0.0) < (span.end or 0.0))
    if not hand_offs:  # the usual trace: every span under its own parent
        roots = kids.pop(None, [])
        return kids, roots
    children: dict[str | None, list[Span]] = defaultdict(list)
    roots: list[Span] = []
    stack: list[Span] = []      # candidate ancestors of the current span, ends non-increasing upwards
    negated: list[float] = []   # -end of each, for bisect
    visited: set[str] = set()
    # Spans in a parent cycle (bad input) are reached by no root: they start walks of their own.
    for start in [*kids.get(None, ()), *spans]:
        if start.span_id in visited:
            continue
        size = 0
        # Entries: (span, None) to enter it; (None, (size, place, saved)) to undo what entering did.
        work: list[tuple[Span | None, tuple[int, int, tuple[Span, float] | None] | None]] = [(start, None)]
        while work:
            span, undo = work.pop()
            if span is None:
                assert undo is not None
                size, place, saved = undo
                if saved is not None:
                    stack[place], negated[place] = saved
                continue
            if span.span_id in visited:
                continue
            visited.add(span.span_id)
            end = span.end or 0.0
            place = bisect_right(negated, -end, 0, size)  # stack[:place] ends no earlier than the span
            (children[stack[place - 1].span_id] if place else roots).append(span)
            # Save the slot even beyond `size`: it may hold part of an ancestor's stack, hidden for now.
            saved = (stack[place], negated[place]) if place < len(stack) else None
            if saved is not None:
                stack[place], negated[place] = span, -end
            else:
                stack.append(span)
                negated.append(-end)
            work.append((None, (size, place, saved)))
            size = place + 1
            work.extend((child, None) for child in reversed(kids.get(span.span_id, ())))
    return children, roots


def critical_path(trace: Trace) -> list[Segment]:
    """Segments of the critical path in time order (finished spans only)."""
    spans = [span for span in trace.spans.values() if span.end is not None]
    if not spans:
        return []
    children, roots = _children(spans)
    # Several roots (or orphans) are treated as children of one virtual span covering the trace.
    virtual = Span(trace.trace_id, "", "", "", min(span.start for span in spans))
    virtual.end = max(span.end for span in spans if span.end is not None)
    children[""] = roots
    segments: list[Segment] = []
    # Explicit stack instead of recursion: traces can nest thousands deep.
    # Frame: (span, its children sorted by end descending, next child index, cursor).
    stack: list[list[Any]] = [[virtual, _by_end(children[""]), 0, virtual.end]]
    while stack:
        frame = stack[-1]
        span, kids, index, cursor = frame
        descended = False
        while index < len(kids):
            child = kids[index]
            index += 1
            if child.start >= cursor:
                continue  # entirely after the cursor: not on the path
            child_end = min(child.end, cursor)
            if child_end < cursor:
                segments.append(Segment(span, child_end, cursor))  # the parent's own time after the child
            frame[2], frame[3] = index, max(child.start, span.start)
            stack.append([child, _by_end(children.get(child.span_id, [])), 0, child_end])
            descended = True
            break
        if descended:
            continue
        if cursor > span.start:
            segments.append(Segment(span, span.start, cursor))
        stack.pop()
    segments = [segment for segment in segments if segment.span is not virtual and segment.end > segment.start]
    return sorted(segments, key=lambda segment: segment.start)


def _by_end(spans: list[Span]) -> list[Span]:
    return sorted(spans, key=lambda span: (span.end, span.start), reverse=True)


def analyze(trace: Trace) -> dict[str, Any]:
    """Everything the API reports about one trace."""
    spans = list(trace.spans.values())
    finished = [span for span in spans if span.end is not None]
    agents: dict[str, dict[str, Any]] = {}
    completed: list[Span] = []                    # the course's view, gathered in the same pass
    participation: dict[str, dict[str, Any]] = {}
    for span in spans:
        duration = span.duration
        entry = agents.get(span.agent_id)
        if entry is None:
            entry = agents[span.agent_id] = {"spans": 0, "total_time_seconds": 0.0, "operations": set(),
                                             "errors": 0, "input_tokens": 0, "output_tokens": 0,
                                             "tool_calls": 0, "agent_invocations": 0}
        entry["spans"] += 1
        entry["total_time_seconds"] += duration
        entry["operations"].add(span.operation)
        entry["errors"] += span.status == STATUS_ERROR
        entry["input_tokens"] += _int(span.attributes.get(GENAI_INPUT_TOKENS))
        entry["output_tokens"] += _int(span.attributes.get(GENAI_OUTPUT_TOKENS))
        operation = span.attributes.get(GENAI_OPERATION, "")
        entry["tool_calls"] += operation == TOOL_CALL
        entry["agent_invocations"] += operation == AGENT_CALL
        if span.end is not None and span.status in COMPLETED_STATUSES:
            completed.append(span)
            course = participation.get(span.agent_id)
            if course is None:
                course = participation[span.agent_id] = {"span_count": 0, "total_duration_ms": 0.0,
                                                         "operations": []}
            course["span_count"] += 1
            course["total_duration_ms"] += duration * 1000
            course["operations"].append(span.operation)
    for entry in agents.values():
        entry["operations"] = sorted(entry["operations"])
        entry["total_time_seconds"] = round(entry["total_time_seconds"], 6)

    path = critical_path(trace)
    on_path: dict[str, dict[str, Any]] = {}
    for segment in path:
        item = on_path.setdefault(segment.span.span_id, {
            "span_id": segment.span.span_id, "agent_id": segment.span.agent_id,
            "operation": segment.span.operation, "start": segment.span.start, "end": segment.span.end,
            "duration_seconds": round(segment.span.duration, 6), "time_on_path_seconds": 0.0})
        item["time_on_path_seconds"] += segment.end - segment.start
    for item in on_path.values():
        item["time_on_path_seconds"] = round(item["time_on_path_seconds"], 6)
    longest = heapq.nlargest(3, finished, key=lambda span: span.duration)
    return {
        **course_keys(trace, len(spans), completed, participation),
        "trace_id": trace.trace_id,
        "complete": trace.open_spans == 0,
        "span_count": len(spans),
        "open_spans": trace.open_spans,
        "total_duration_seconds": round(trace.duration, 6),
        "average_span_duration_seconds": round(sum(s.duration for s in finished) / len(finished), 6) if finished else 0,
        "agents": agents,
        "errors": [{"span_id": span.span_id, "agent_id": span.agent_id, "operation": span.operation,
                    "message": str(span.attributes.get("error.message", span.attributes.get("status.message", "")))}
                   for span in spans if span.status == STATUS_ERROR],
        "critical_path_spans": list(on_path.values()),
        "critical_path_duration_seconds": round(sum(segment.end - segment.start for segment in path), 6),
        "longest_spans": [{"span_id": span.span_id, "agent_id": span.agent_id, "operation": span.operation,
                           "duration_seconds": round(span.duration, 6)} for span in longest],
    }


def course_keys(trace: Trace, total_spans: int, completed: list[Span],
                participation: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The course's analysis keys. Its "completed" spans are those finished without an error status
    ('completed' as the course writes it, or OpenTelemetry's ok / unset); durations in milliseconds.
    Its `critical_path` is "agent:operation" of the three longest completed spans, longest first:
    the course's spans carry no parent, so that is what it can say about where the time went (the
    structural path through parents and children is `critical_path_spans`)."""
    top = heapq.nlargest(3, completed, key=lambda span: span.duration)
    total_ms = sum(entry["total_duration_ms"] for entry in participation.values())
    return {"trace_id": trace.trace_id, "total_spans": total_spans, "completed_spans": len(completed),
            "total_duration_ms": top[0].duration * 1000 if top else 0.0,
            "average_span_duration_ms": total_ms / len(completed) if completed else 0.0,
            "agent_participation": participation,
            "critical_path": [f"{span.agent_id}:{span.operation}" for span in top]}


def _int(value: Any) -> int:
    """A token count from an attribute: numbers only; non-finite or negative values count as 0
    (`inf` would otherwise break the trace's analysis for good)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value) if math.isfinite(value) and value >= 0 else 0
