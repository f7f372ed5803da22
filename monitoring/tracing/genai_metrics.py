"""GenAI client metrics from OTLP `/v1/metrics`: token usage and model calls per agent and model.

Agents configured with the generic `OTEL_EXPORTER_OTLP_ENDPOINT` send metrics beside their traces.
Two of the OpenTelemetry GenAI client metrics say what the traces say, and keep saying it when
traces are sampled: `gen_ai.client.token.usage` (a histogram of tokens per call, by
`gen_ai.token.type`) and `gen_ai.client.operation.duration` (seconds per call). Their model-call
points (`chat`, `embeddings`, ...) are kept as totals per agent, model and token type or
operation; points of `invoke_agent` and other aggregate operations repeat the model calls'
tokens and are ignored (never twice), as is every other metric. Everything is counted.

Every total carries the namespace of the ingestion token the points came with ("" for the admin token
or an open loopback service), and a point counts for the agent its `gen_ai.agent.name` names only when
that token may speak for that agent (the same rule as the resource's agent; credentials.py): a
namespace can't credit tokens to another namespace's agent.

A series is one metric of one agent instance with one set of point attributes (kept as a digest,
never as the attribute text). Cumulative points (the SDK's default) replace the series' running
value when newer, so re-sent totals count once; a point with a later start time (the agent
restarted) closes the old stream and its final value stays in the total. Delta points add up.
At most `max_streams` series are live: beyond that the least recently updated one is retired, its
totals kept per agent, model and kind (restarted agents come back with a new instance id, so old
series would otherwise pile up). A retired series that reports again starts over, so its earlier
total counts twice: raise max_streams above the live series count. Points are refused (and counted)
only when the retired totals also hold max_streams keys.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from ..settings import agent_id_problem
from .genai import MODEL_CALLS, OPERATION
from .otlp import attribute_value

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
TOKEN_TYPE = "gen_ai.token.type"
MAX_LABEL = 256  # longest model or type name kept in a key (agent names must be valid agent ids, or are refused)
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
MAX_POINT_SUM = 1e15  # far beyond any real token count or seconds; keeps every total finite


@dataclass
class MetricStats:
    """Counters of the OTLP metrics and logs endpoints, exposed on /metrics."""

    points_used: int = 0
    points_ignored: int = 0     # metrics or operations the analysis has no use for
    points_dropped: int = 0     # refused: max_streams series live and as many retired totals, or an
                                # agent the sender may not speak for
    log_records: int = 0        # acknowledged, not kept


@dataclass(slots=True)
class Series:
    """Running totals of one series: what closed streams left, and the live stream's latest point."""

    closed_count: float = 0.0
    closed_sum: float = 0.0
    start: int = 0        # the live stream's start time (cumulative)
    time: int = 0         # its latest point's time
    count: float = 0.0
    sum: float = 0.0

    def cumulative(self, point: Any) -> None:
        if point.start_time_unix_nano > self.start:  # a new stream (the agent restarted): close the live one
            self.closed_count += self.count
            self.closed_sum += self.sum
            self.start, self.time, self.count, self.sum = point.start_time_unix_nano, 0, 0.0, 0.0
        if point.start_time_unix_nano == self.start and point.time_unix_nano >= self.time:  # older points lose
            self.time, self.count, self.sum = point.time_unix_nano, point.count, point.sum

    def delta(self, point: Any) -> None:
        self.closed_count += point.count
        self.closed_sum += point.sum

    @property
    def totals(self) -> tuple[float, float]:
        return self.closed_count + self.count, self.closed_sum + self.sum


@dataclass
class GenAIMetrics:
    """Totals of the GenAI client metrics, by (agent, model, token type) and (agent, model, operation)."""

    max_streams: int = 10_000
    # (metric, agent, model, kind, namespace, digest of the instance and point attributes) -> Series, least
    # recent first
    streams: OrderedDict[tuple[str, str, str, str, str, bytes], Series] = field(default_factory=OrderedDict)
    retired: dict[tuple[str, str, str, str, str], tuple[float, float]] = field(default_factory=dict)
    stats: MetricStats = field(default_factory=MetricStats)

    def ingest(self, request: ExportMetricsServiceRequest, agent_attribute: str = "service.name",
               may_send_as: Callable[[str], bool] = lambda agent: True, namespace: str = "") -> int:
        """Take the usable points of an export, sent with the token of `namespace`; return how many were
        refused (max_streams reached, an agent name that is no valid agent id, or an agent, of the resource or
        named by a point, the sender may not speak for)."""
        return sum(self.ingest_slices(request, agent_attribute, may_send_as, namespace))

    def ingest_slices(self, request: ExportMetricsServiceRequest, agent_attribute: str = "service.name",
                      may_send_as: Callable[[str], bool] = lambda agent: True, namespace: str = "",
                      points_per_slice: int = 1_000) -> Iterator[int]:
        """ingest() a slice at a time: yields the points refused in each slice of about `points_per_slice`
        points, so a caller on the event loop can yield to it in between."""
        refused = work = 0
        for resource_metrics in request.resource_metrics:
            resource = {item.key: attribute_value(item.value) for item in resource_metrics.resource.attributes}
            service = str(resource.get("service.name") or "unknown")
            agent = str(resource.get(agent_attribute) or service)
            if agent_id_problem(agent) is not None or not may_send_as(agent):
                points = sum(_points(metric) for scope in resource_metrics.scope_metrics for metric in scope.metrics)
                self.stats.points_dropped += points
                refused += points
                continue
            instance = f"{service}\0{resource.get('service.instance.id', '')}"
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    work += 1
                    if metric.name not in (TOKEN_USAGE, OPERATION_DURATION) or not metric.HasField("histogram"):
                        self.stats.points_ignored += _points(metric)
                        continue
                    cumulative = metric.histogram.aggregation_temporality == _CUMULATIVE
                    for point in metric.histogram.data_points:
                        refused += self._take(metric.name, agent, instance, point, cumulative, namespace,
                                              may_send_as)
                        work += 1
                        if work >= points_per_slice:
                            yield refused
                            refused = work = 0
                    if work >= points_per_slice:
                        yield refused
                        refused = work = 0
        yield refused

    def _take(self, metric: str, agent: str, instance: str, point: Any, cumulative: bool, namespace: str,
              may_send_as: Callable[[str], bool]) -> int:
        attributes = {item.key: attribute_value(item.value) for item in point.attributes}
        operation = str(attributes.get(OPERATION, ""))
        if operation not in MODEL_CALLS:
            self.stats.points_ignored += 1
            return 0
        model = str(attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
                    or "unknown")[:MAX_LABEL]
        named = attributes.get("gen_ai.agent.name")
        who = str(named or agent)
        if named and (agent_id_problem(who) is not None or not may_send_as(who)):
            self.stats.points_dropped += 1
            return 1
        if not 0 <= point.sum <= MAX_POINT_SUM:  # NaN fails too: token counts and durations are finite, >= 0
            self.stats.points_dropped += 1
            return 1
        kind = str(attributes.get(TOKEN_TYPE, "")) if metric == TOKEN_USAGE else operation
        digest = hashlib.blake2b(repr((instance, sorted((key, str(value)) for key, value in attributes.items())))
                                 .encode(), digest_size=16).digest()
        key = (metric, who, model, kind[:MAX_LABEL], namespace, digest)
        series = self.streams.get(key)
        if series is None:
            if len(self.streams) >= self.max_streams and not self._retire_oldest():
                self.stats.points_dropped += 1
                return 1
            series = self.streams[key] = Series()
        else:
            self.streams.move_to_end(key)
        if cumulative:
            series.cumulative(point)
        else:
            series.delta(point)
        self.stats.points_used += 1
        return 0

    def _retire_oldest(self) -> bool:
        """Fold the least recently updated series into the retired totals; False when those are full."""
        (metric, agent, model, kind, namespace, _), series = next(iter(self.streams.items()))
        label = (metric, agent, model, kind, namespace)
        if label not in self.retired and len(self.retired) >= self.max_streams:
            return False
        self.streams.popitem(last=False)
        count, total = self.retired.get(label, (0.0, 0.0))
        self.retired[label] = (count + series.totals[0], total + series.totals[1])
        return True

    def tokens(self) -> dict[tuple[str, str, str, str], float]:
        """(agent, model, token type, namespace) -> tokens."""
        return self._totals(TOKEN_USAGE, 1)

    def calls(self) -> dict[tuple[str, str, str, str], float]:
        """(agent, model, operation, namespace) -> model calls."""
        return self._totals(OPERATION_DURATION, 0)

    def seconds(self) -> dict[tuple[str, str, str, str], float]:
        """(agent, model, operation, namespace) -> seconds spent in model calls."""
        return self._totals(OPERATION_DURATION, 1)

    def _totals(self, metric: str, index: int) -> dict[tuple[str, str, str, str], float]:
        totals: dict[tuple[str, str, str, str], float] = {}
        for (name, agent, model, kind, namespace), values in self.retired.items():
            if name == metric:
                key = (agent, model, kind, namespace)
                totals[key] = totals.get(key, 0) + values[index]
        for (name, agent, model, kind, namespace, _), series in self.streams.items():
            if name == metric:
                key = (agent, model, kind, namespace)
                totals[key] = totals.get(key, 0) + series.totals[index]
        return totals

    def usage(self) -> dict[str, Any]:
        """The JSON view: per namespace, agent and model, tokens by type and calls with their seconds; `agents`
        sums the namespaces (what this view said before it carried them)."""
        namespaces: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        agents: dict[str, dict[str, dict[str, Any]]] = {}
        for totals, name in ((self.tokens(), "tokens"), (self.calls(), "calls"), (self.seconds(), "seconds")):
            for (agent, model, kind, namespace), value in totals.items():
                for view in (namespaces.setdefault(namespace, {}), agents):
                    entry = view.setdefault(agent, {}).setdefault(model, {"tokens": {}, "calls": {}, "seconds": {}})
                    total = entry[name].get(kind, 0) + value
                    entry[name][kind] = round(total, 6) if name == "seconds" else int(total)
        return {"agents": agents, "namespaces": namespaces, "streams": len(self.streams),
                "max_streams": self.max_streams}


def _points(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def log_records(records: Iterable[Any]) -> int:
    """How many log records an export holds."""
    return sum(len(scope.log_records) for resource in records for scope in resource.scope_logs)
