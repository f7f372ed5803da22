"""Spans and traces, and the Tracer that keeps them in bounded memory.

Finishing a span is O(1) through an index by span id. Memory is bounded by a limit on
live traces (the oldest is dropped), on spans per trace, and by evicting finished traces
after a retention time; everything refused or dropped is counted.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

STATUS_OK, STATUS_ERROR, STATUS_UNSET = "ok", "error", "unset"


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


@dataclass(slots=True)
class Span:
    """One operation of one agent within a trace; times in seconds since the epoch."""

    trace_id: str
    span_id: str
    operation: str
    agent_id: str
    start: float
    parent_id: str | None = None
    end: float | None = None
    status: str = STATUS_UNSET
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.end is not None

    @property
    def duration(self) -> float:
        return (self.end - self.start) if self.end is not None else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "span_id": self.span_id, "parent_span_id": self.parent_id,
                "operation": self.operation, "agent_id": self.agent_id, "start": self.start, "end": self.end,
                "duration_seconds": self.duration, "status": self.status, "attributes": self.attributes}


@dataclass
class Trace:
    """The spans of one trace and its bookkeeping."""

    trace_id: str
    spans: dict[str, Span] = field(default_factory=dict)
    open_spans: int = 0
    completed_at: float | None = None  # when the last open span finished (None while any is open)
    # Summary (start, end, agents) computed on demand and cached until a span arrives or finishes:
    # ingestion stays cheap and listings don't rescan traces that stopped changing.
    _summary: tuple[float, float, frozenset[str]] | None = field(default=None, repr=False)

    def add_span(self, span: Span) -> None:
        """Store a span (invalidating the cached summary)."""
        self.spans[span.span_id] = span
        self._summary = None

    def span_finished(self, span: Span) -> None:
        """Note that one of the trace's spans finished (invalidating the cached summary)."""
        self._summary = None

    def _summarize(self) -> tuple[float, float, frozenset[str]]:
        if self._summary is None:
            spans = self.spans.values()
            start = min((span.start for span in spans), default=0.0)
            end = max((span.end for span in spans if span.end is not None), default=start)
            self._summary = (start, end, frozenset(span.agent_id for span in spans))
        return self._summary

    @property
    def start(self) -> float:
        return self._summarize()[0]

    @property
    def end(self) -> float:
        return self._summarize()[1]

    @property
    def duration(self) -> float:
        return self.end - self.start if self.spans else 0.0

    @property
    def agents(self) -> frozenset[str]:
        """Agents that took part in the trace."""
        return self._summarize()[2]


@dataclass
class TracerStats:
    """Counters exposed on /metrics."""

    spans_received: dict[str, int] = field(default_factory=lambda: {"api": 0, "otlp": 0})
    dropped_spans: int = 0          # over the per-trace limit
    dropped_traces: int = 0         # pushed out by the live-trace limit
    evicted_traces: int = 0         # finished and past retention
    finish_unknown: int = 0         # finish_span for a span we don't have
    finish_duplicate: int = 0       # finish_span for a span already finished


class TraceLimitError(Exception):
    """A span was refused because its trace holds the maximum number of spans."""


class Tracer:
    """Keeps traces in memory (bounded) and answers questions about them."""

    def __init__(self, max_traces: int = 10_000, max_spans_per_trace: int = 10_000, retention_seconds: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.traces: OrderedDict[str, Trace] = OrderedDict()  # oldest first
        self._spans: dict[str, Span] = {}                      # span id -> span, for O(1) finish
        self._completed: deque[tuple[float, str]] = deque()    # (completed_at, trace id), in completion order
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.retention_seconds = retention_seconds
        self.stats = TracerStats()
        self._clock = clock

    # --- the seed's API ----------------------------------------------------------------

    def start_trace(self, trace_id: str | None, operation: str, agent_id: str,
                    metadata: Mapping[str, Any] | None = None, parent_span_id: str | None = None) -> str:
        """Start a span (in a new trace when `trace_id` is None); return its span id."""
        span = Span(trace_id or new_trace_id(), new_span_id(), operation, agent_id, self._clock(),
                    parent_id=parent_span_id, attributes=dict(metadata or {}))
        self.add(span, source="api")
        return span.span_id

    start_span = start_trace

    def finish_span(self, span_id: str, status: str = STATUS_OK, metadata: Mapping[str, Any] | None = None,
                    end_time: float | None = None) -> bool:
        """End a span once; unknown or already finished spans are logged and counted, not raised."""
        span = self._spans.get(span_id)
        if span is None:
            self.stats.finish_unknown += 1
            log.warning("finish_span: unknown span %s", span_id)
            return False
        if span.end is not None:
            self.stats.finish_duplicate += 1
            log.warning("finish_span: span %s already finished", span_id)
            return False
        span.end = max(span.start, end_time if end_time is not None else self._clock())
        span.status = status
        if metadata:
            span.attributes.update(metadata)
        trace = self.traces[span.trace_id]
        trace.span_finished(span)
        trace.open_spans -= 1
        if trace.open_spans == 0:
            self._complete(trace)
        return True

    def get_trace_analysis(self, trace_id: str) -> dict[str, Any] | None:
        """The analysis of a trace (see analysis.analyze), or None when unknown."""
        from .analysis import analyze

        trace = self.traces.get(trace_id)
        return analyze(trace) if trace is not None else None

    # --- storage ------------------------------------------------------------------------

    def add(self, span: Span, source: str) -> None:
        """Store a span (open or already finished); raise TraceLimitError when its trace is full."""
        self.stats.spans_received[source] = self.stats.spans_received.get(source, 0) + 1
        trace = self.traces.get(span.trace_id)
        if trace is None:
            trace = self.traces[span.trace_id] = Trace(span.trace_id)
            while len(self.traces) > self.max_traces:
                self._drop(next(iter(self.traces)))
                self.stats.dropped_traces += 1
        if span.span_id in trace.spans:
            return  # a re-sent span (exporter retry): keep the first copy
        if len(trace.spans) >= self.max_spans_per_trace:
            self.stats.dropped_spans += 1
            raise TraceLimitError(f"trace {span.trace_id} already holds {self.max_spans_per_trace} spans")
        trace.add_span(span)
        self._spans[span.span_id] = span
        if span.end is None:
            trace.open_spans += 1
            trace.completed_at = None
        elif trace.open_spans == 0:
            self._complete(trace)

    def evict(self) -> int:
        """Drop traces finished longer ago than the retention time; return how many."""
        cutoff = self._clock() - self.retention_seconds
        evicted = 0
        while self._completed and self._completed[0][0] <= cutoff:
            completed_at, trace_id = self._completed.popleft()
            trace = self.traces.get(trace_id)
            # Skip stale entries: the trace got new spans (or was dropped) after this completion.
            if trace is not None and trace.completed_at == completed_at:
                self._drop(trace_id)
                evicted += 1
        self.stats.evicted_traces += evicted
        return evicted

    def recent(self, agent_id: str | None = None, limit: int = 50) -> list[Trace]:
        """Traces (optionally those an agent took part in), slowest first."""
        traces = [trace for trace in self.traces.values() if trace.spans
                  and (agent_id is None or agent_id in trace.agents)]
        return sorted(traces, key=lambda trace: trace.duration, reverse=True)[:limit]

    def span(self, span_id: str) -> Span | None:
        """A stored span by id (O(1))."""
        return self._spans.get(span_id)

    @property
    def live_spans(self) -> int:
        return len(self._spans)

    def _complete(self, trace: Trace) -> None:
        trace.completed_at = self._clock()
        self._completed.append((trace.completed_at, trace.trace_id))

    def _drop(self, trace_id: str) -> None:
        trace = self.traces.pop(trace_id)
        for span_id in trace.spans:
            self._spans.pop(span_id, None)
