"""Bounds on what one body may carry in labels, shared by every source of samples (text and JSON scrapes,
remote-write, OTLP metrics), as Prometheus' `label_limit`, `label_name_length_limit` and
`label_value_length_limit` bound a scrape: a body with one sample beyond them is refused whole (and counted),
never stored in part, so one agent's labels cannot grow the service's memory without bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

BODY_SIZE = "body_size"  # the refusal reason of a body over its byte limit (compressed or expanded)


@dataclass(frozen=True, slots=True)
class LabelLimits:
    """Labels per sample, and the longest label name and value (in characters)."""

    max_labels: int
    max_name_length: int
    max_value_length: int

    def problem(self, labels: Iterable[tuple[str, str]]) -> str | None:
        """The reason `labels` break the limits (a `monitoring_bodies_refused_total` reason), or None."""
        count = 0
        for name, value in labels:
            count += 1
            if len(name) > self.max_name_length:
                return "label_name_length"
            if len(value) > self.max_value_length:
                return "label_value_length"
        return "label_limit" if count > self.max_labels else None


@dataclass
class BodyRefusals:
    """Bodies refused whole for their size, item count or labels, by source (scrape, remote_write, otlp_metrics,
    otlp_traces, otlp_logs) and reason; a remote-write batch is refused by the series (a series breaking the
    label limits is left out and counted, its neighbours kept); exposed as `monitoring_bodies_refused_total`."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, source: str, reason: str, count: int = 1) -> None:
        key = (source, reason)
        self.counts[key] = self.counts.get(key, 0) + count
