"""The data of a trace's waterfall: every span as a row, grouped by agent, the critical path marked.

Compact on purpose (a 10,000-span trace is one request): rows are arrays
`[start_ms, duration_ms | null, agent_index, operation, error, critical, span_id, depth]` with times
relative to the trace's first span; `null` duration is a span still open. Built from a snapshot,
so it can run in a worker thread.
"""

from __future__ import annotations

from typing import Any

from ..tracing import cycle_gc
from ..tracing.analysis import span_agents
from ..tracing.critical_path import critical_path
from ..tracing.spans import STATUS_ERROR, Snapshot, Span


def _depths(spans: list[Span]) -> list[int]:
    """Nesting depth of each span under its ancestors present in the trace (0: a root or an orphan)."""
    index_of = {span.span_id: index for index, span in enumerate(spans)}
    depth = [-1] * len(spans)
    for start in range(len(spans)):
        chain, on_chain, current = [], set(), start
        while depth[current] < 0:  # walk up to a span whose depth is known (or a root)
            chain.append(current)
            on_chain.add(current)
            parent_id = spans[current].parent_id
            up = index_of.get(parent_id) if parent_id is not None and parent_id != spans[current].span_id else None
            if up is None or up in on_chain:  # a root, an orphan, or a cycle: depth 0 here
                depth[current] = 0
                chain.pop()
                break
            current = up
        for index in reversed(chain):
            depth[index] = depth[current] + 1
            current = index
    return depth


def waterfall(snapshot: Snapshot) -> dict[str, Any]:
    """The waterfall document of a trace snapshot."""
    with cycle_gc.paused():
        spans = snapshot.spans
        if not spans:
            return {"trace_id": snapshot.trace_id, "duration_ms": 0, "agents": [], "rows": [], "critical_count": 0}
        agent_of = span_agents(spans)
        depth = _depths(spans)
        on_path = {id(segment.span) for segment in critical_path(spans)}
        origin = min(span.start for span in spans)
        end = max((span.end if span.end is not None else span.start) for span in spans)
        first_start: dict[str, float] = {}
        for span, agent in zip(spans, agent_of):
            if span.start < first_start.get(agent, float("inf")):
                first_start[agent] = span.start
        agents = sorted(first_start, key=lambda agent: (first_start[agent], agent))
        agent_index = {agent: index for index, agent in enumerate(agents)}
        order = sorted(range(len(spans)), key=lambda index: (agent_index[agent_of[index]], spans[index].start))
        rows = []
        for index in order:
            span = spans[index]
            rows.append([round((span.start - origin) * 1000, 3),
                         round((span.end - span.start) * 1000, 3) if span.end is not None else None,
                         agent_index[agent_of[index]], span.operation, span.status == STATUS_ERROR,
                         id(span) in on_path, span.span_id, depth[index]])
        return {"trace_id": snapshot.trace_id, "duration_ms": round((end - origin) * 1000, 3), "agents": agents,
                "rows": rows, "critical_count": len(on_path)}
