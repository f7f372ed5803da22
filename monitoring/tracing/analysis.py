"""Trace analysis: durations, agents (who did what, with GenAI usage per agent and model), errors,
the critical path (critical_path.py) and the longest spans. O(n log n) for every trace shape.

How the OpenTelemetry GenAI conventions are read (genai.py has the attribute names):

- **Agent identity.** A span that names a GenAI agent (`gen_ai.agent.name`, else `gen_ai.agent.id`)
  belongs to that agent, and so do its descendants in the same service until one names
  another; other spans belong to the identity they arrived with (the resource's
  `service.name`, or the JSON API's agent_id), which stays visible as the agent's `services`.
- **Tokens counted once.** The spans that report usage furthest down the tree are the source:
  a span's usage counts only when no descendant reports usage (an `invoke_agent` span with
  its own totals over `chat` spans that report theirs counts through the `chat` spans).
- **One per hop.** An `invoke_agent` or `execute_tool` span of kind CLIENT is the caller's side
  of a call; when the callee recorded the same operation below it, only the callee's counts.
"""

from __future__ import annotations

import heapq
from typing import Any

from . import cycle_gc
from .critical_path import Segment, critical_path
from .genai import EXECUTE_TOOL, INVOKE_AGENT, NO_FACTS, TOKEN_KINDS
from .spans import KIND_CLIENT, STATUS_ERROR, STATUS_OK, STATUS_UNSET, Snapshot, Span, Trace

COMPLETED_STATUSES = frozenset({"completed", STATUS_OK, STATUS_UNSET})  # finished without an error
HOPS = (INVOKE_AGENT, EXECUTE_TOOL)
UNKNOWN_MODEL = "unknown"
EXCEPTION_EVENT = "exception"
MAX_PATH_LISTED = MAX_LISTED = 1_000  # entries of a list in the analysis; the counts say how many there are


class _AgentTally:
    """What one agent did in the trace."""

    __slots__ = ("spans", "time", "operations", "errors", "tool_calls", "invocations", "services", "error_types",
                 "namespaces")

    def __init__(self) -> None:
        self.spans = self.errors = self.tool_calls = self.invocations = 0
        self.time = 0.0
        self.operations: set[str] = set()
        self.services: set[str] = set()
        self.error_types: dict[str, int] = {}
        self.namespaces: set[str] = set()  # of the ingestion tokens its spans came with


class _ModelTally:
    """Model calls and token usage of one agent with one model (summed per agent and per model later)."""

    __slots__ = ("calls", "errors", "tokens", "providers", "error_types")

    def __init__(self) -> None:
        self.calls = self.errors = 0
        self.tokens = [0] * len(TOKEN_KINDS)
        self.providers: set[str] = set()
        self.error_types: dict[str, int] = {}

    def merge(self, other: _ModelTally) -> None:
        self.calls += other.calls
        self.errors += other.errors
        self.tokens = [mine + theirs for mine, theirs in zip(self.tokens, other.tokens)]
        self.providers |= other.providers
        _add_counts(self.error_types, other.error_types)

    def as_dict(self) -> dict[str, Any]:
        return {"providers": sorted(self.providers), "calls": self.calls, "errors": self.errors,
                **dict(zip(TOKEN_KINDS, self.tokens)), "error_types": dict(sorted(self.error_types.items()))}


def _add_counts(into: dict[str, int], counts: dict[str, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


def analyze(trace: Trace | Snapshot) -> dict[str, Any]:
    """Everything the API reports about one trace (a Trace is snapshotted first)."""
    with cycle_gc.paused():
        return _analyze(trace.snapshot() if isinstance(trace, Trace) else trace)


def _analyze(snapshot: Snapshot) -> dict[str, Any]:
    spans = snapshot.spans
    parent = _parents(spans)
    agent_of = _agents(spans, parent)
    counts_usage = _usage_sources(spans, parent)
    answered = _answered_hops(spans, parent)

    agents: dict[str, _AgentTally] = {}
    usage_by: dict[tuple[str, str], _ModelTally] = {}  # (agent, model) -> calls and tokens
    completed: list[tuple[Span, str]] = []            # the course's view, gathered in the same pass
    participation: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    links: list[dict[str, str]] = []
    start = end = None
    open_spans = error_count = link_count = 0
    for index, span in enumerate(spans):
        agent = agent_of[index]
        tally = agents.get(agent)
        if tally is None:
            tally = agents[agent] = _AgentTally()
        span_end = span.end
        if span_end is None:
            open_spans += 1
            duration = 0.0
        else:
            duration = span_end - span.start
            end = span_end if end is None or span_end > end else end
        start = span.start if start is None or span.start < start else start
        tally.spans += 1
        tally.time += duration
        tally.operations.add(span.operation)
        tally.services.add(span.service or span.agent_id)
        if span.namespace:
            tally.namespaces.add(span.namespace)
        failed = span.status == STATUS_ERROR
        if failed:
            tally.errors += 1
            error_count += 1
            if error_count <= MAX_LISTED:
                errors.append(_error(span, agent))
        facts = span.genai
        if facts is not NO_FACTS:
            error_type = facts.error_type
            if error_type is not None:
                tally.error_types[error_type] = tally.error_types.get(error_type, 0) + 1
            operation = facts.operation
            if operation in HOPS and not (span.kind == KIND_CLIENT and index in answered):
                if operation == INVOKE_AGENT:
                    tally.invocations += 1
                else:
                    tally.tool_calls += 1
            calls_model = facts.calls_model
            usage = facts.usage if counts_usage is None or index in counts_usage else None
            if calls_model or usage is not None:
                key = (agent, facts.model or UNKNOWN_MODEL)
                model = usage_by.get(key)
                if model is None:
                    model = usage_by[key] = _ModelTally()
                if facts.provider is not None:
                    model.providers.add(facts.provider)
                if calls_model:
                    model.calls += 1
                    model.errors += failed
                    if error_type is not None:
                        model.error_types[error_type] = model.error_types.get(error_type, 0) + 1
                if usage is not None:
                    tokens = model.tokens
                    for kind, count in enumerate(usage):
                        tokens[kind] += count
        if span.links:
            link_count += len(span.links)
            links.extend({"span_id": span.span_id, "linked_trace_id": link.trace_id, "linked_span_id": link.span_id}
                         for link in span.links[:MAX_LISTED - len(links)])
        if span_end is not None and span.status in COMPLETED_STATUSES:
            completed.append((span, agent))
            course = participation.get(agent)
            if course is None:
                course = participation[agent] = {"span_count": 0, "total_duration_ms": 0.0, "operations": []}
            course["span_count"] += 1
            course["total_duration_ms"] += duration * 1000
            course["operations"].append(span.operation)

    finished = len(spans) - open_spans
    total_time = sum(tally.time for tally in agents.values())
    longest = heapq.nlargest(3, ((span, agent_of[index]) for index, span in enumerate(spans) if span.end is not None),
                             key=_duration)
    return {
        **course_keys(snapshot.trace_id, len(spans), completed, participation),
        "trace_id": snapshot.trace_id,
        "complete": open_spans == 0,
        "span_count": len(spans),
        "open_spans": open_spans,
        "total_duration_seconds": round(end - start, 6) if start is not None and end is not None else 0.0,
        "average_span_duration_seconds": round(total_time / finished, 6) if finished else 0,
        **_usage_keys(agents, usage_by),
        "errors": errors,
        "error_count": error_count,
        "links": links,
        "link_count": link_count,
        **_path_keys(critical_path(spans), agent_of, spans),
        # Copies of span ids refused from another namespace: the trace was contested (model.Tracer.add).
        "conflict_count": snapshot.conflict_count,
        "conflicts": [{"span_id": conflict.span_id, "kept_namespace": conflict.kept_namespace,
                       "refused_namespace": conflict.refused_namespace} for conflict in snapshot.conflicts],
        "longest_spans": [{"span_id": span.span_id, "agent_id": agent, "operation": span.operation,
                           "duration_seconds": round(span.duration, 6)} for span, agent in longest],
    }


def _usage_keys(agents: dict[str, _AgentTally], usage_by: dict[tuple[str, str], _ModelTally]) -> dict[str, Any]:
    """`agents` (each with its models), `models` (over every agent) and the trace's `tokens`."""
    per_agent: dict[str, dict[str, _ModelTally]] = {}
    per_model: dict[str, _ModelTally] = {}
    for (agent, name), tally in sorted(usage_by.items()):
        per_agent.setdefault(agent, {})[name] = tally
        per_model.setdefault(name, _ModelTally()).merge(tally)
    total = _ModelTally()
    for tally in per_model.values():
        total.merge(tally)
    listed: dict[str, Any] = {}
    for agent, tally in agents.items():
        mine = _ModelTally()
        for model in per_agent.get(agent, {}).values():
            mine.merge(model)
        listed[agent] = {
            "spans": tally.spans, "total_time_seconds": round(tally.time, 6), "operations": sorted(tally.operations),
            "errors": tally.errors, **dict(zip(TOKEN_KINDS, mine.tokens)), "model_calls": mine.calls,
            "tool_calls": tally.tool_calls, "agent_invocations": tally.invocations,
            "services": sorted(tally.services), "namespaces": sorted(tally.namespaces),
            "error_types": dict(sorted(tally.error_types.items())),
            "models": {name: model.as_dict() for name, model in per_agent.get(agent, {}).items()}}
    return {"agents": listed, "models": {name: model.as_dict() for name, model in per_model.items()},
            "tokens": dict(zip(TOKEN_KINDS, total.tokens))}


def _duration(item: tuple[Span, str]) -> float:
    span = item[0]
    return span.end - span.start  # type: ignore[operator]  # finished spans only


def _path_keys(path: list[Segment], agent_of: list[str], spans: list[Span]) -> dict[str, Any]:
    """`critical_path_spans`: each span on the path once, in time order, with its time on the path; at
    most MAX_PATH_LISTED (those with the most time on it) so that a 10,000-span chain answers in a
    bounded document; `critical_path_span_count` says how many there are."""
    time_on: dict[int, list[Any]] = {}  # id(span) -> [span, time on path], first seen first (time order)
    total = 0.0
    for span, start, end in path:
        total += end - start
        entry = time_on.get(id(span))
        if entry is None:
            time_on[id(span)] = [span, end - start]
        else:
            entry[1] += end - start
    entries = list(time_on.values())
    if len(entries) > MAX_PATH_LISTED:
        kept = {id(entry) for entry in heapq.nlargest(MAX_PATH_LISTED, entries, key=lambda entry: entry[1])}
        entries = [entry for entry in entries if id(entry) in kept]
    position = {id(span): index for index, span in enumerate(spans)} if entries else {}
    return {"critical_path_spans": [
                {"span_id": span.span_id, "agent_id": agent_of[position[id(span)]], "operation": span.operation,
                 "start": span.start, "end": span.end, "duration_seconds": round(span.end - span.start, 6),
                 "time_on_path_seconds": round(on_path, 6)} for span, on_path in entries],
            "critical_path_span_count": len(time_on),
            "critical_path_duration_seconds": round(total, 6)}


def _error(span: Span, agent: str) -> dict[str, Any]:
    """One entry of the error list: the message and type from attributes, the `exception` event, or the status."""
    attributes = span.attributes
    exception = next((event.attributes for event in span.events if event.name == EXCEPTION_EVENT), {})
    message = (attributes.get("error.message") or attributes.get("status.message")
               or exception.get("exception.message") or "")
    error_type = span.genai.error_type or exception.get("exception.type")
    return {"span_id": span.span_id, "agent_id": agent, "operation": span.operation, "message": str(message),
            "error_type": str(error_type) if error_type is not None else None}


def _parents(spans: list[Span]) -> list[int]:
    """Index of each span's parent among `spans`, or -1 (a root, an orphan, or its own parent)."""
    index_of = {span.span_id: index for index, span in enumerate(spans)}
    return [-1 if span.parent_id is None or span.parent_id == span.span_id else index_of.get(span.parent_id, -1)
            for span in spans]


def _inherit(parent: list[int], own: list[Any], fallback: list[Any], linked: list[bool] | None) -> list[Any]:
    """value[i] = own[i] when set, else value[parent[i]] when i is linked to its parent, else fallback[i].

    Each span is resolved once (the path walked up is filled in on the way back), so any shape is
    O(n); a parent cycle (bad input) ends the walk with the fallback.
    """
    value = list(own)
    state = bytearray(len(own))  # 0 unresolved, 1 on the current walk, 2 resolved
    for index, item in enumerate(own):
        if item is not None:
            state[index] = 2
    for index in range(len(own)):
        if state[index] == 2:
            continue
        walk: list[int] = []
        current = index
        while True:
            if state[current] == 2:
                result = value[current]
                break
            if state[current] == 1:
                result = fallback[current]
                break
            state[current] = 1
            walk.append(current)
            up = parent[current]
            if up < 0 or (linked is not None and not linked[current]):
                result = fallback[current]
                break
            current = up
        for item in walk:
            value[item], state[item] = result, 2
    return value


def span_agents(spans: list[Span]) -> list[str]:
    """Each span's agent as the analysis counts it (the console's waterfall groups by it)."""
    return _agents(spans, _parents(spans))


def _agents(spans: list[Span], parent: list[int]) -> list[str]:
    """Each span's agent: the GenAI agent it (or an ancestor in its service) names, else its own identity."""
    names = [span.genai.agent_name for span in spans]
    identity = [span.agent_id for span in spans]
    if not any(names):
        return identity
    same_service = [up >= 0 and spans[up].agent_id == span.agent_id for span, up in zip(spans, parent)]
    return _inherit(parent, names, identity, same_service)


def _usage_sources(spans: list[Span], parent: list[int]) -> set[int] | None:
    """Indexes of the spans whose usage counts (no descendant reports usage); None when all do."""
    reporters = [index for index, span in enumerate(spans) if span.genai.usage is not None]
    if not reporters:
        return None
    covered = bytearray(len(spans))  # some descendant reports usage
    for index in reporters:
        up = parent[index]
        while up >= 0 and not covered[up] and up != index:
            covered[up] = 1
            up = parent[up]
    return {index for index in reporters if not covered[index]}


def _answered_hops(spans: list[Span], parent: list[int]) -> set[int]:
    """CLIENT invoke_agent / execute_tool spans whose callee recorded the same operation below them."""
    answered: set[int] = set()
    for operation in HOPS:
        if not any(span.kind == KIND_CLIENT and span.genai.operation == operation for span in spans):
            continue
        own = [index if span.genai.operation == operation else None for index, span in enumerate(spans)]
        nearest = _inherit(parent, own, [None] * len(spans), None)  # nearest span of the operation, self included
        for index, span in enumerate(spans):
            up = parent[index]
            # Only the callee's own (non-CLIENT) span answers: a CLIENT span below is its next call out.
            if own[index] is not None and up >= 0 and span.kind != KIND_CLIENT:
                caller = nearest[up]
                if caller is not None and spans[caller].kind == KIND_CLIENT:
                    answered.add(caller)
    return answered


def course_keys(trace_id: str, total_spans: int, completed: list[tuple[Span, str]],
                participation: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The course's analysis keys. Its "completed" spans are those finished without an error status
    ('completed' as the course writes it, or OpenTelemetry's ok / unset); durations in milliseconds.
    Its `critical_path` is "agent:operation" of the three longest completed spans, longest first:
    the course's spans carry no parent, so that is what it can say about where the time went (the
    structural path through parents and children is `critical_path_spans`)."""
    top = heapq.nlargest(3, completed, key=_duration)
    total_ms = sum(entry["total_duration_ms"] for entry in participation.values())
    return {"trace_id": trace_id, "total_spans": total_spans, "completed_spans": len(completed),
            "total_duration_ms": top[0][0].duration * 1000 if top else 0.0,
            "average_span_duration_ms": total_ms / len(completed) if completed else 0.0,
            "agent_participation": participation,
            "critical_path": [f"{agent}:{span.operation}" for span, agent in top]}
