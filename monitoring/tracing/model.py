"""The Tracer: keeps spans and traces (spans.py) in bounded memory and serves their analysis.

Finishing a span is O(1) through an index by span id. Memory is bounded in bytes (an estimate
per span, budget.py; the oldest traces go first), by a limit on live traces and on spans per
trace, by per-span caps, and by evicting finished traces after a retention time; everything
refused, cut or dropped is counted. Analyses are cached per trace until the trace changes.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .analysis import analyze
from .budget import BARE_SPAN, Cuts, SpanLimits, admit
from .genai import facts_of
from .spans import (STATUS_OK, Span, SpanConflict, SpanIdConflict, Trace, TraceLimitError, TracerStats, new_span_id,
                    new_trace_id)

COMPLETION_RESOLUTION = 1.0  # seconds: completion times are refreshed at most this often
ANALYSES_CACHED = 64  # analyses kept (the traces people are looking at), each until its trace changes
CONFLICTS_LISTED = 16  # span id conflicts listed per trace (all are counted)
CONFLICT_BYTES = 256   # estimated bytes of one listed conflict, charged to the trace budget

log = logging.getLogger(__name__)


class Tracer:
    """Keeps traces in memory (bounded) and answers questions about them."""

    def __init__(self, max_traces: int = 10_000, max_spans_per_trace: int = 10_000, retention_seconds: float = 600.0,
                 clock: Callable[[], float] = time.time, max_bytes: int = 256 * 2**20,
                 limits: SpanLimits | None = None) -> None:
        self.traces: OrderedDict[str, Trace] = OrderedDict()  # oldest first
        # Span id -> span of the spans this service started (start_trace), for an O(1) finish. Only
        # those: their ids are the service's own random ones, while an id an exporter sends may be
        # reused in another trace and must not take over a span it doesn't belong to.
        self._started: dict[str, Span] = {}
        self.live_spans = 0
        self._completed: deque[tuple[float, str]] = deque()    # (completed_at, trace id), in completion order
        self._analyses: OrderedDict[str, tuple[int, Any]] = OrderedDict()  # trace id -> (version, analysis)
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.retention_seconds = retention_seconds
        self.max_bytes = max_bytes
        self.limits = limits or SpanLimits()
        self.bytes = 0  # estimated bytes of every live span
        self.stats = TracerStats()
        self._cuts = Cuts()
        self._clock = clock

    # --- the seed's API ----------------------------------------------------------------

    def start_trace(self, trace_id: str | None, operation: str, agent_id: str,
                    metadata: Mapping[str, Any] | None = None, parent_span_id: str | None = None,
                    namespace: str = "") -> str:
        """Start a span (in a new trace when `trace_id` is None); return its span id."""
        span = Span(trace_id or new_trace_id(), new_span_id(), operation, agent_id, self._clock(),
                    parent_id=parent_span_id, attributes=dict(metadata or {}), namespace=namespace)
        self.add(span, source="api")
        return span.span_id

    start_span = start_trace

    def finish_span(self, span_id: str, status: str = STATUS_OK, metadata: Mapping[str, Any] | None = None,
                    end_time: float | None = None) -> bool:
        """End a span once; unknown or already finished spans are logged and counted, not raised."""
        span = self._started.get(span_id)
        if span is None:
            self.stats.finish_unknown += 1
            log.warning("finish_span: unknown span %s", span_id)
            return False
        if span.end is not None:
            self.stats.finish_duplicate += 1
            log.warning("finish_span: span %s already finished", span_id)
            return False
        trace = self.traces[span.trace_id]
        if metadata:
            self._merge(trace, span, metadata)
        span.end = max(span.start, end_time if end_time is not None else self._clock())
        span.status = status
        trace.span_finished(span)
        trace.open_spans -= 1
        if trace.open_spans == 0:
            self._complete(trace)
        return True

    def get_trace_analysis(self, trace_id: str) -> dict[str, Any] | None:
        """The analysis of a trace (see analysis.analyze), or None when unknown; cached until the trace changes."""
        trace = self.traces.get(trace_id)
        if trace is None:
            return None
        cached = self.cached(trace)
        if cached is None:
            cached = self.cache(trace.trace_id, trace.version, analyze(trace.snapshot()))
        return cached

    def cached(self, trace: Trace) -> Any | None:
        """What `cache` stored for the trace's current version, or None."""
        entry = self._analyses.get(trace.trace_id)
        if entry is None or entry[0] != trace.version:
            return None
        self._analyses.move_to_end(trace.trace_id)
        return entry[1]

    def cache(self, trace_id: str, version: int, analysis: Any) -> Any:
        """Keep `analysis` of version `version` of a trace (the least recently used goes); return it."""
        trace = self.traces.get(trace_id)
        if trace is not None and trace.version == version:
            self._analyses[trace_id] = (version, analysis)
            self._analyses.move_to_end(trace_id)
            while len(self._analyses) > ANALYSES_CACHED:
                self._analyses.popitem(last=False)
        return analysis

    # --- storage ------------------------------------------------------------------------

    def add(self, span: Span, source: str) -> None:
        """Store a span (open or already finished); raise TraceLimitError when its trace is full, and
        SpanIdConflict when the trace holds a span of that id that came with another namespace's token."""
        received = self.stats.spans_received
        received[source] = received.get(source, 0) + 1
        trace = self.traces.get(span.trace_id)
        if trace is None:
            trace = self.traces[span.trace_id] = Trace(span.trace_id)
            while len(self.traces) > self.max_traces:
                self._drop(next(iter(self.traces)))
                self.stats.dropped_traces += 1
        first = trace.spans.get(span.span_id)
        if first is not None:
            if first.namespace != span.namespace:
                self._conflict(trace, first, span)
            return  # a re-sent span (exporter retry): keep the first copy
        if len(trace.spans) >= self.max_spans_per_trace:
            self.stats.dropped_spans += 1
            raise TraceLimitError(f"trace {span.trace_id} already holds {self.max_spans_per_trace} spans")
        detailed = bool(span.attributes or span.events or span.links)
        if detailed:
            size = span.size = admit(span, self.limits, self._cuts)
            if self._cuts.truncated or self._cuts.dropped:
                self._count_cuts()
        else:  # the bare span: no caps to apply (bare_size, inlined on this hot path)
            size = span.size = (BARE_SPAN + len(span.trace_id) + len(span.span_id) + len(span.operation)
                                + len(span.agent_id))
        if self.bytes + size > self.max_bytes:
            self._make_room(size, keep=trace)
        trace.add_span(span)
        if detailed and span.genai.invalid_values:
            self.stats.invalid_token_values += span.genai.invalid_values
        self.bytes += size
        self.live_spans += 1
        if source == "api":
            self._started[span.span_id] = span
        if span.end is None:
            trace.open_spans += 1
            trace.completed_at = None
        elif trace.open_spans == 0:
            self._complete(trace)

    def _conflict(self, trace: Trace, first: Span, span: Span) -> None:
        """Refuse a copy of `first`'s id from another namespace: counted, noted on the trace (its analysis
        lists the first few), logged, raised. Neither copy takes the other's place."""
        self.stats.span_id_conflicts += 1
        trace.conflict_count += 1
        trace.version += 1  # the analysis reports the conflict
        if len(trace.conflicts) < CONFLICTS_LISTED:
            try:
                if self.bytes + CONFLICT_BYTES > self.max_bytes:
                    self._make_room(CONFLICT_BYTES, keep=trace)
            except TraceLimitError:
                pass  # counted, not listed
            else:
                trace.conflicts.append(SpanConflict(span.span_id, first.namespace, span.namespace))
                trace.bytes += CONFLICT_BYTES
                self.bytes += CONFLICT_BYTES
        log.warning("span %s of trace %s refused: the trace holds that span id from namespace %r, this copy came "
                    "from %r", span.span_id, span.trace_id, first.namespace, span.namespace)
        raise SpanIdConflict(f"span {span.span_id} of trace {span.trace_id} was sent before with another "
                             f"namespace's token; span ids are unique within a trace (this copy is refused)")

    def evict(self) -> int:
        """Drop traces finished longer ago than the retention time; return how many."""
        cutoff = self._clock() - self.retention_seconds
        evicted = 0
        while self._completed and self._completed[0][0] <= cutoff:
            entry = self._completed.popleft()
            if self._current(entry):  # else stale: the trace got new spans (or was dropped) since
                self._drop(entry[1])
                evicted += 1
        self.stats.evicted_traces += evicted
        return evicted

    def recent(self, agent_id: str | None = None, limit: int = 50) -> list[Trace]:
        """Traces (optionally those an agent took part in), slowest first."""
        traces = [trace for trace in self.traces.values() if trace.spans
                  and (agent_id is None or agent_id in trace.agents)]
        return sorted(traces, key=lambda trace: trace.duration, reverse=True)[:limit]

    def span(self, span_id: str) -> Span | None:
        """A span this service started (start_trace), by id (O(1))."""
        return self._started.get(span_id)

    def _merge(self, trace: Trace, span: Span, metadata: Mapping[str, Any]) -> None:
        """Merge a finish's metadata into a new attribute dict (a snapshot being analysed keeps the old
        one), within the caps and the byte budget; metadata that can't fit is dropped and counted."""
        candidate = replace(span, attributes={**span.attributes, **metadata})
        size = admit(candidate, self.limits, self._cuts)
        self._count_cuts()
        if size > span.size and self.bytes + size - span.size > self.max_bytes:
            try:
                self._make_room(size - span.size, keep=trace)
            except TraceLimitError:
                self.stats.dropped_attributes += len(metadata)
                return
        trace.bytes += size - span.size
        self.bytes += size - span.size
        span.attributes, span.size = candidate.attributes, size
        span.genai = facts_of(span.attributes)
        self.stats.invalid_token_values += span.genai.invalid_values

    def _count_cuts(self) -> None:
        self.stats.truncated_attributes += self._cuts.truncated
        self.stats.dropped_attributes += self._cuts.dropped
        self._cuts.truncated = self._cuts.dropped = 0

    def _make_room(self, size: int, keep: Trace) -> None:
        """Drop the oldest other traces until `size` more bytes fit; refuse the span when they can't."""
        while self.bytes + size > self.max_bytes:
            oldest = next((trace_id for trace_id in self.traces if trace_id != keep.trace_id), None)
            if oldest is None or keep.bytes + size > self.max_bytes:  # it can't fit: drop nothing for it
                self.stats.dropped_spans_bytes += 1
                if not keep.spans:
                    self.traces.pop(keep.trace_id, None)
                raise TraceLimitError(f"span of {size} bytes does not fit the {self.max_bytes}-byte trace budget "
                                      f"(its trace holds {keep.bytes} bytes)")
            self._drop(oldest)
            self.stats.dropped_traces_bytes += 1

    def _complete(self, trace: Trace) -> None:
        """Note the trace complete as of now. A trace already complete within the last second keeps its
        time: a batch of finished spans makes one entry, not one per span (retention is to the second)."""
        now = self._clock()
        if trace.completed_at is not None and now - trace.completed_at < COMPLETION_RESOLUTION:
            return
        trace.completed_at = now
        self._completed.append((now, trace.trace_id))
        if len(self._completed) > 2 * len(self.traces) + 1024:  # entries of dropped or refreshed traces
            self._completed = deque(entry for entry in self._completed if self._current(entry))

    def _current(self, entry: tuple[float, str]) -> bool:
        """Whether a completion record still describes its trace (not dropped, no span since)."""
        trace = self.traces.get(entry[1])
        return trace is not None and trace.completed_at == entry[0]

    def _drop(self, trace_id: str) -> None:
        trace = self.traces.pop(trace_id)
        self._analyses.pop(trace_id, None)
        self.bytes -= trace.bytes
        self.live_spans -= len(trace.spans)
        if self._started:
            for span_id, span in trace.spans.items():
                if self._started.get(span_id) is span:  # not another trace's span with a reused id
                    del self._started[span_id]
