"""The course's `DistributedTracing` over the service's Tracer (bounded memory, O(1) finish).

Its analysis is the service's, which carries the course's keys (`total_spans`,
`completed_spans`, `total_duration_ms`, `average_span_duration_ms`, `agent_participation`,
`critical_path`) beside the richer ones; the two error documents are the course's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Tracer

TRACE_NOT_FOUND = {"error": "Trace not found"}
NO_COMPLETED_SPANS = {"error": "No completed spans in trace"}


class DistributedTracing:
    """Spans of requests through the agents; `get_trace_analysis` finds where the time went."""

    def __init__(self, max_traces: int = 10_000, max_spans_per_trace: int = 10_000,
                 retention_seconds: float = 600.0) -> None:
        self.tracer = Tracer(max_traces, max_spans_per_trace, retention_seconds)

    async def start_trace(self, trace_id: str, operation: str, agent_id: str,
                          metadata: Mapping[str, Any] | None = None, parent_span_id: str | None = None) -> str:
        """Start a span of `agent_id` in trace `trace_id` (under `parent_span_id`, if given); return its id."""
        self.tracer.evict()  # no background loop here: finished traces past retention go as new ones come
        return self.tracer.start_trace(trace_id, operation, agent_id, metadata, parent_span_id)

    async def finish_span(self, span_id: str, status: str = "completed",
                          metadata: Mapping[str, Any] | None = None) -> None:
        """End a span with `status` ('completed' when it succeeded) and merge `metadata` into it."""
        self.tracer.finish_span(span_id, status, metadata)

    def get_trace_analysis(self, trace_id: str) -> dict[str, Any]:
        """The trace's analysis, or the course's error document when it is unknown or nothing completed."""
        analysis = self.tracer.get_trace_analysis(trace_id)
        if analysis is None:
            return dict(TRACE_NOT_FOUND)
        if analysis["completed_spans"] == 0:
            return dict(NO_COMPLETED_SPANS)
        return analysis
