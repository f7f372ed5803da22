"""The Tracer: keeps spans and traces (spans.py) in bounded memory and serves their analysis.

Finishing a span is O(1) through an index by span id. Memory is bounded by a limit on
live traces (the oldest is dropped), on spans per trace, and by evicting finished traces
after a retention time; everything refused or dropped is counted.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

from .analysis import analyze
from .spans import STATUS_OK, Span, Trace, TraceLimitError, TracerStats, new_span_id, new_trace_id

log = logging.getLogger(__name__)


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
