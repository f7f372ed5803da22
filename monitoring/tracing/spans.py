"""Spans and traces: what the tracer stores, and what the analysis reads.

Kept apart from the Tracer so that the analysis (which reads spans) and the Tracer (which
serves analyses) both build on it without importing each other.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

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
