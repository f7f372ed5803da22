"""What one span may hold, and what it costs: per-span caps and an estimate of its bytes in memory.

The caps follow OpenTelemetry's span limits (attribute count, value length, events, links);
what they cut is counted, never silently lost. The estimate is what the tracer's byte budget
adds up: CPython's object sizes for the span, its ids and strings, its attributes and events
(calibrated against tracemalloc by the tests, within a factor the budget can live with).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spans import Span

# Bytes CPython spends on a stored span beyond its strings: the slotted Span, the entries in the
# trace's and the tracer's indexes, the attribute dict's table, the facts object.
SPAN_OVERHEAD = 600
STR_OVERHEAD = 50         # header of a str object
ENTRY_OVERHEAD = 100      # one dict entry plus the boxed value
EVENT_OVERHEAD = 200
# Plus the lengths of its ids, operation and agent; the parent id (16 hex digits when set) is counted here.
BARE_SPAN = SPAN_OVERHEAD + 5 * STR_OVERHEAD + 16


@dataclass(frozen=True, slots=True)
class SpanLimits:
    """Per-span caps (OpenTelemetry's defaults, but a value length cap, which the SDK leaves unlimited)."""

    max_attributes: int = 128
    max_value_length: int = 4096
    max_events: int = 128
    max_links: int = 128


@dataclass(slots=True)
class Cuts:
    """What capping a span cut."""

    truncated: int = 0  # values shortened
    dropped: int = 0    # attributes, events and links over the count caps


def cap_attributes(attributes: dict[str, Any], limits: SpanLimits, cuts: Cuts) -> tuple[dict[str, Any], int]:
    """The attributes within the caps and their estimated bytes. Cuts values in place: call it only
    on a dict nobody else holds yet (a span's, before it is stored)."""
    if len(attributes) > limits.max_attributes:
        cuts.dropped += len(attributes) - limits.max_attributes
        attributes = dict(list(attributes.items())[:limits.max_attributes])
    size = 0
    longest = limits.max_value_length
    for key, value in attributes.items():  # replacing values while iterating is fine; the size stays
        if isinstance(value, str):
            if len(value) > longest:
                value = attributes[key] = value[:longest]
                cuts.truncated += 1
            size += ENTRY_OVERHEAD + STR_OVERHEAD + len(key) + len(value)
        elif isinstance(value, (list, tuple)):
            if len(value) > limits.max_attributes:
                cuts.dropped += len(value) - limits.max_attributes
            value = attributes[key] = [_capped_item(item, longest, cuts) for item in value[:limits.max_attributes]]
            size += ENTRY_OVERHEAD + STR_OVERHEAD + len(key) + sum(_scalar_size(item) for item in value)
        elif isinstance(value, dict):  # an OTLP kvlist: kept as its (bounded) text
            value = attributes[key] = str(value)[:longest]
            size += ENTRY_OVERHEAD + STR_OVERHEAD + len(key) + len(value)
        else:
            size += ENTRY_OVERHEAD + STR_OVERHEAD + len(key)
    return attributes, size


def _capped_item(item: Any, longest: int, cuts: Cuts) -> Any:
    if isinstance(item, str) and len(item) > longest:
        cuts.truncated += 1
        return item[:longest]
    if isinstance(item, (list, tuple, dict)):
        return str(item)[:longest]
    return item


def _scalar_size(item: Any) -> int:
    return STR_OVERHEAD + (len(item) if isinstance(item, str) else 8)


def bare_size(span: Span) -> int:
    """Estimated bytes of a span without its attributes, events and links."""
    return BARE_SPAN + len(span.trace_id) + len(span.span_id) + len(span.operation) + len(span.agent_id)


def admit(span: Span, limits: SpanLimits, cuts: Cuts) -> int:
    """Bring `span` within `limits` (replacing what is cut) and return its estimated bytes."""
    fixed = bare_size(span)
    span.attributes, size = cap_attributes(span.attributes, limits, cuts)
    if span.events:
        if len(span.events) > limits.max_events:
            cuts.dropped += len(span.events) - limits.max_events
            span.events = span.events[:limits.max_events]
        events = []
        for event in span.events:
            attributes, event_size = cap_attributes(event.attributes, limits, cuts)
            events.append(event._replace(attributes=attributes))
            size += EVENT_OVERHEAD + len(event.name) + event_size
        span.events = tuple(events)
    if span.links:
        if len(span.links) > limits.max_links:
            cuts.dropped += len(span.links) - limits.max_links
            span.links = span.links[:limits.max_links]
        size += len(span.links) * (EVENT_OVERHEAD + 2 * STR_OVERHEAD + 48)
    return fixed + size

