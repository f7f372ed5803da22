"""Spans and traces: what the tracer stores, and what the analysis reads.

Kept apart from the Tracer so that the analysis (which reads spans) and the Tracer (which
serves analyses) both build on it without importing each other.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from .genai import NO_FACTS, GenAIFacts, facts_of

STATUS_OK, STATUS_ERROR, STATUS_UNSET = "ok", "error", "unset"
# OpenTelemetry span kinds, as the analysis reads them ("" when unknown, e.g. the JSON span API's).
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = (
    "internal", "server", "client", "producer", "consumer")


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


class SpanEvent(NamedTuple):
    """A timestamped event of a span (e.g. OpenTelemetry's `exception` event)."""

    name: str
    time: float
    attributes: dict[str, Any]


class SpanLink(NamedTuple):
    """A reference to a span of this or another trace (kept as a reference only)."""

    trace_id: str
    span_id: str


@dataclass(slots=True)
class Span:
    """One operation of one agent within a trace; times in seconds since the epoch.

    `agent_id` is the identity the span arrived with (the resource's agent attribute, or the JSON
    API's agent_id); the analysis refines it with the GenAI agent a span names (`genai`).
    A stored span is never changed once finished, and its attribute dict is replaced, never
    updated in place, so an analysis can read a snapshot while the tracer goes on.
    """

    trace_id: str
    span_id: str
    operation: str
    agent_id: str
    start: float
    parent_id: str | None = None
    end: float | None = None
    status: str = STATUS_UNSET
    attributes: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    service: str = ""                      # the resource's service.name, when it differs from agent_id
    events: tuple[SpanEvent, ...] = ()
    links: tuple[SpanLink, ...] = ()
    genai: GenAIFacts = NO_FACTS           # set when stored (Tracer.add) and when finished
    size: int = 0                          # estimated bytes held (set when stored)
    namespace: str = ""                    # the namespace of the ingestion token it came with ("" for others)

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


class SpanConflict(NamedTuple):
    """A copy of a span id the trace already held, sent with another namespace's token and refused."""

    span_id: str
    kept_namespace: str     # of the copy kept (the first; "" for the admin token or no credential)
    refused_namespace: str  # of the copy refused


class Snapshot(NamedTuple):
    """A trace's spans at one moment, safe to analyse while the tracer changes the trace."""

    trace_id: str
    spans: list[Span]
    conflict_count: int = 0                   # copies refused for their span id (SpanConflict)
    conflicts: tuple[SpanConflict, ...] = ()  # the first of them


@dataclass
class Trace:
    """The spans of one trace and its bookkeeping."""

    trace_id: str
    spans: dict[str, Span] = field(default_factory=dict)
    open_spans: int = 0
    completed_at: float | None = None  # when the last open span finished (None while any is open)
    version: int = 0                   # changes whenever a span arrives or finishes (analysis cache key)
    bytes: int = 0                     # estimated bytes of its spans (and of the conflicts listed)
    conflict_count: int = 0            # copies of its span ids refused from another namespace
    conflicts: list[SpanConflict] = field(default_factory=list)  # the first few of them (the Tracer bounds it)
    # Summary (start, end, agents) computed on demand and cached until a span arrives or finishes:
    # ingestion stays cheap and listings don't rescan traces that stopped changing.
    _summary: tuple[float, float, frozenset[str]] | None = field(default=None, repr=False)

    def add_span(self, span: Span) -> None:
        """Store a span, reading its GenAI facts (and invalidating the cached summary)."""
        if span.attributes:  # (the many bare spans skip the call)
            span.genai = facts_of(span.attributes)
        self.spans[span.span_id] = span
        self.bytes += span.size
        self.version += 1
        self._summary = None

    def span_finished(self, span: Span) -> None:
        """Note that one of the trace's spans finished (invalidating the cached summary)."""
        self.version += 1
        self._summary = None

    def snapshot(self) -> Snapshot:
        """The spans as of now; open spans are copied (finishing changes them), finished ones shared."""
        return Snapshot(self.trace_id, [span if span.end is not None else replace(span)
                                        for span in self.spans.values()], self.conflict_count, tuple(self.conflicts))

    def _summarize(self) -> tuple[float, float, frozenset[str]]:
        if self._summary is None:
            spans = self.spans.values()
            start = min((span.start for span in spans), default=0.0)
            end = max((span.end for span in spans if span.end is not None), default=start)
            agents = {span.agent_id for span in spans}
            agents.update(span.genai.agent_name for span in spans if span.genai.agent_name is not None)
            self._summary = (start, end, frozenset(agents))
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
        """Agents that took part in the trace: the identities spans arrived with and the GenAI agents they name."""
        return self._summarize()[2]


@dataclass
class TracerStats:
    """Counters exposed on /metrics."""

    spans_received: dict[str, int] = field(default_factory=lambda: {"api": 0, "otlp": 0})
    dropped_spans: int = 0          # over the per-trace limit
    dropped_spans_bytes: int = 0    # larger than the byte budget allows
    dropped_traces: int = 0         # pushed out by the live-trace limit
    dropped_traces_bytes: int = 0   # pushed out by the byte budget
    truncated_attributes: int = 0   # attribute values shortened to the length cap
    dropped_attributes: int = 0     # attributes, events and links over the per-span caps
    invalid_token_values: int = 0   # token counts ignored (non-finite, negative, not a number)
    evicted_traces: int = 0         # finished and past retention
    finish_unknown: int = 0         # finish_span for a span we don't have
    finish_duplicate: int = 0       # finish_span for a span already finished
    span_id_conflicts: int = 0      # a span id its trace holds, sent from another namespace (refused)
    invalid_agent_ids: int = 0      # spans naming an agent id that isn't one (refused by the HTTP API)


class TraceLimitError(Exception):
    """A span was refused: its trace holds the maximum number of spans, or it exceeds the byte budget."""


class SpanIdConflict(TraceLimitError):
    """A span was refused: its trace holds a span of that id sent with another namespace's token (a namespace
    that learned the id from a traceparent can't take the owner's span over, nor be taken over)."""
