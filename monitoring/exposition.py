"""Prometheus exposition of the collector's state through prometheus_client.

Values are read from the collector at scrape time (a custom collector), so nothing is
updated per sample on the hot path. Each family is a row of a table (name, type, help,
labels, how to read its samples); one loop turns the rows into metric families. The
handler factory follows prometheus_client's aiohttp exposition.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PrometheusCollector

from .agents import AgentStatus
from .health import active_alert_counts, current_scores
from .settings import Severity
from .tracing.cycle_gc import paused

if TYPE_CHECKING:
    from .agents import AgentState
    from .collector import Collector
    from .notifiers import Dispatcher
    from .tracing.genai_metrics import GenAIMetrics
    from .tracing.model import Tracer
    from .persistence import StoreStats
    from .tracing.relay import Relay

log = logging.getLogger(__name__)
Source = TypeVar("Source")
Samples = Iterable[tuple[Sequence[str], float]]  # (label values, value) pairs of one family
_KINDS = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}


@dataclass(frozen=True)
class Family(Generic[Source]):
    """One metric family on /metrics and how to read its samples from `Source` at scrape time."""

    name: str  # counters without `_total`: prometheus_client appends it
    type: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...]
    samples: Callable[[Source], Samples]

    def build(self, source: Source) -> Metric:
        family = _KINDS[self.type](self.name, self.help, labels=self.labels)
        for values, value in self.samples(source):
            family.add_metric(list(values), value)
        return family


def _single(read: Callable[[Source], float]) -> Callable[[Source], Samples]:
    """Samples of a family without labels: the one value `read` returns."""
    return lambda source: [((), read(source))]


def _tally(values: Iterable[str], every: Iterable[str]) -> Samples:
    """How often each of `every` occurs in `values` (zeros included, so series don't vanish)."""
    counts = Counter(values)
    return [((key,), counts.get(key, 0)) for key in every]


def _notifications(dispatcher: Dispatcher) -> Samples:
    return [*(((name, "success"), count) for name, count in dispatcher.delivered.items()),
            *(((name, "failure"), count) for name, count in dispatcher.failed.items())]


def _escape(value: str) -> str:
    """A label value in the text format: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@functools.lru_cache(maxsize=65_536)  # agent ids outlive many /metrics renders; bounded for churn
def _agent_label(agent_id: str) -> str:
    return f'{{agent_id="{_escape(agent_id)}"}} '


def _agent_lines(collector: Collector, alert_counts: Counter[str]) -> tuple[list[str], list[str], list[str]]:
    """The sample lines of the per-agent families (up, health score, last scrape duration), written directly:
    with 10,000 agents they are 30,000 samples, which prometheus_client's generic families format several times
    slower. `alert_counts` is active_alert_counts(), read once per rendering, not once per slice."""
    up, score, duration = [], [], []
    active = AgentStatus.ACTIVE
    for state, health in current_scores(collector, alert_counts):
        label = _agent_label(state.agent_id)
        up.append(f"monitoring_agent_up{label}{'1.0' if state.status is active else '0.0'}")
        score.append(f"monitoring_agent_health_score{label}{health!r}")
        duration.append(f"monitoring_agent_last_scrape_duration_seconds{label}{float(state.last_scrape_duration)!r}")
    return up, score, duration


# The HELP and TYPE lines of the per-agent families, in the order of _agent_lines.
_AGENT_HEADS = (
    b"# HELP monitoring_agent_up 1 if the agent's last scrapes succeeded.\n# TYPE monitoring_agent_up gauge\n",
    b"# HELP monitoring_agent_health_score Agent health score (0-100).\n"
    b"# TYPE monitoring_agent_health_score gauge\n",
    b"# HELP monitoring_agent_last_scrape_duration_seconds Duration of the agent's last scrape.\n"
    b"# TYPE monitoring_agent_last_scrape_duration_seconds gauge\n",
)


COLLECTOR_FAMILIES: tuple[Family[Collector], ...] = (
    Family("monitoring_agents", "gauge", "Registered agents by heartbeat status.", ("status",),
           lambda c: _tally((state.status.value for state in c.agents.values()), (s.value for s in AgentStatus))),
    Family("monitoring_bodies_refused", "counter", "Bodies refused whole for their labels, size or items (and "
                                                   "remote-written series left out for their labels or agent "
                                                   "id), by source (scrape, remote_write, otlp_traces, "
                                                   "otlp_metrics, otlp_logs) and reason.",
           ("source", "reason"), lambda c: list(c.refusals.counts.items())),
    Family("monitoring_samples_out_of_bounds", "counter", "Samples dropped for a timestamp beyond max_sample_age "
                                                          "or max_sample_future, by source (scrape, remote_write) "
                                                          "and reason.",
           ("source", "reason"), lambda c: list(c.out_of_bounds.items())),
    Family("monitoring_alerts_active", "gauge", "Active alerts by severity.", ("severity",),
           lambda c: _tally((alert.severity.value for alert in c.alerts.active.values()), (s.value for s in Severity))),
    Family("monitoring_alerts_fired", "counter", "Alerts raised since start.", (),
           _single(lambda c: c.alerts.fired_total)),
    Family("monitoring_alerts_dropped", "counter", "Alerts not raised: max_active_alerts were firing.", (),
           _single(lambda c: c.alerts.dropped)),
    Family("monitoring_scrapes", "counter", "Agent scrapes by result.", ("result",),
           lambda c: [(("success",), c.stats.scrapes_ok), (("failure",), c.stats.scrapes_failed)]),
    Family("monitoring_samples", "counter", "Samples collected.", (), _single(lambda c: c.stats.samples)),
    Family("monitoring_series_dropped", "counter", "Series refused by the series limits (per agent, in count "
                                                   "and bytes, and the bytes of all series).", (),
           _single(lambda c: c.store.dropped_series)),
    Family("monitoring_recent_samples_bytes", "gauge", "Estimated bytes of the recent-samples buffer "
                                                       "(recent_metrics_bytes bounds it).", (),
           _single(lambda c: c.store.recent_bytes)),
    Family("monitoring_series_bytes", "gauge", "Estimated bytes of every agent's rolling windows "
                                               "(max_series_bytes bounds it).", (),
           _single(lambda c: c.store.series_bytes)),
    Family("monitoring_scrape_lag_seconds", "gauge", "Scrape start delay behind schedule.", ("quantile",),
           lambda c: [((str(q),), c.stats.lag_quantile(q)) for q in (0.5, 0.99)]),
)

DISPATCHER_FAMILIES: tuple[Family[Dispatcher], ...] = (
    Family("monitoring_alert_notifications", "counter", "Alert deliveries by handler.", ("handler", "result"),
           _notifications),
    Family("monitoring_alert_notifications_dropped", "counter", "Alert changes dropped (queue full).", (),
           _single(lambda d: d.dropped)),
    Family("monitoring_alert_notifications_unencodable", "counter", "Alerts left out of a delivery batch because "
                                                                  "they could not be encoded, by handler.",
           ("handler",), lambda d: [((handler.name,), handler.unencodable) for handler in d.handlers
                                    if hasattr(handler, "unencodable")]),
)

TRACER_FAMILIES: tuple[Family[Tracer], ...] = (
    Family("monitoring_spans_received", "counter", "Spans received, by source.", ("source",),
           lambda t: [((source,), count) for source, count in t.stats.spans_received.items()]),
    Family("monitoring_traces_live", "gauge", "Traces held in memory.", (), _single(lambda t: len(t.traces))),
    Family("monitoring_spans_live", "gauge", "Spans held in memory.", (), _single(lambda t: t.live_spans)),
    Family("monitoring_trace_bytes", "gauge", "Estimated bytes of the live traces.", (), _single(lambda t: t.bytes)),
    Family("monitoring_trace_bytes_budget", "gauge", "Byte budget of the live traces (tracing.max_bytes).", (),
           _single(lambda t: t.max_bytes)),
    Family("monitoring_traces_dropped", "counter", "Traces dropped, by reason.", ("reason",),
           lambda t: [(("limit",), t.stats.dropped_traces), (("bytes",), t.stats.dropped_traces_bytes),
                      (("retention",), t.stats.evicted_traces)]),
    Family("monitoring_spans_dropped", "counter", "Spans refused, by reason (per-trace limit, byte budget, a span "
                                                  "id its trace holds from another namespace, an invalid agent id).",
           ("reason",), lambda t: [(("limit",), t.stats.dropped_spans), (("bytes",), t.stats.dropped_spans_bytes),
                                   (("span_id_conflict",), t.stats.span_id_conflicts),
                                   (("agent_id",), t.stats.invalid_agent_ids)]),
    Family("monitoring_span_attributes_cut", "counter", "Span attributes, events and links cut by the per-span "
                                                        "caps, by how.", ("how",),
           lambda t: [(("truncated",), t.stats.truncated_attributes), (("dropped",), t.stats.dropped_attributes)]),
    Family("monitoring_token_values_invalid", "counter", "Token counts ignored (non-finite, negative, not a number).",
           (), _single(lambda t: t.stats.invalid_token_values)),
    Family("monitoring_span_finish_errors", "counter", "finish_span calls that did nothing.", ("reason",),
           lambda t: [(("unknown",), t.stats.finish_unknown), (("duplicate",), t.stats.finish_duplicate)]),
)

GENAI_METRIC_FAMILIES: tuple[Family[GenAIMetrics], ...] = (
    Family("monitoring_genai_client_tokens", "counter",
           "Tokens of model calls, from the agents' OTLP gen_ai.client.token.usage (namespace: the sender's "
           "token's).", ("agent_id", "model", "token_type", "namespace"),
           lambda m: list(m.tokens().items())),
    Family("monitoring_genai_client_calls", "counter", "Model calls, from the agents' OTLP "
                                                       "gen_ai.client.operation.duration.",
           ("agent_id", "model", "operation", "namespace"), lambda m: list(m.calls().items())),
    Family("monitoring_genai_client_call_seconds", "counter", "Seconds in model calls, from the agents' OTLP "
                                                              "gen_ai.client.operation.duration.",
           ("agent_id", "model", "operation", "namespace"), lambda m: list(m.seconds().items())),
    Family("monitoring_otlp_metric_points", "counter", "OTLP metric points received, by what became of them.",
           ("result",), lambda m: [(("used",), m.stats.points_used), (("ignored",), m.stats.points_ignored),
                                   (("dropped",), m.stats.points_dropped)]),
    Family("monitoring_otlp_log_records", "counter", "OTLP log records received (acknowledged, not kept).", (),
           _single(lambda m: m.stats.log_records)),
)

RELAY_FAMILIES: tuple[Family[Relay], ...] = (
    Family("monitoring_relay_exports", "counter", "OTLP exports forwarded upstream, by signal.", ("signal",),
           lambda r: [((signal,), count) for signal, count in r.stats.forwarded.items()]),
    Family("monitoring_relay_retries", "counter", "Attempts to forward that are retried.", (),
           _single(lambda r: r.stats.retries)),
    Family("monitoring_relay_dropped", "counter", "OTLP exports not forwarded, by reason.", ("reason",),
           lambda r: [((reason,), count) for reason, count in r.stats.dropped.items()]),
    Family("monitoring_relay_queue_exports", "gauge", "Exports waiting or being sent.", (),
           _single(lambda r: r.queued)),
    Family("monitoring_relay_queue_bytes", "gauge", "Bytes waiting or being sent.", (),
           _single(lambda r: r.queued_bytes)),
)

REMOTE_WRITE_FAMILIES: tuple[Family[Collector], ...] = (
    Family("monitoring_remote_write_requests", "counter", "Prometheus remote-write requests received.", (),
           _single(lambda c: c.remote_write_stats.requests)),
    Family("monitoring_remote_write_samples", "counter", "Remote-written samples taken in.", (),
           _single(lambda c: c.remote_write_stats.samples)),
    Family("monitoring_remote_write_rejected", "counter", "Remote-write requests or series refused, by reason.",
           ("reason",), lambda c: [((reason,), count) for reason, count in c.remote_write_stats.rejected.items()]),
)

STORE_FAMILIES: tuple[Family[StoreStats], ...] = (
    Family("monitoring_state_saves", "counter", "Saves of the API state (registrations, rules, active alerts), "
                                                "by result.", ("result",),
           lambda s: [(("success",), s.saves), (("failure",), s.failures), (("too_large",), s.refused)]),
    Family("monitoring_state_documents_set_aside", "counter", "Corrupt state documents set aside at start-up.", (),
           _single(lambda s: s.corrupt)),
    Family("monitoring_state_records_set_aside", "counter", "Invalid records (agents, rules, alerts) of a saved state "
                                                            "set aside at start-up, by kind.", ("kind",),
           lambda s: [((kind,), count) for kind, count in s.records_set_aside.items()]),
)


class FamilyTable(PrometheusCollector, Generic[Source]):
    """A prometheus_client collector that builds a table's families from one source at each scrape."""

    def __init__(self, families: Sequence[Family[Source]], source: Source) -> None:
        self._families = families
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield family.build(self._source)


def build_registry(collector: Collector, dispatcher: Dispatcher, tracer: Tracer | None = None,
                   genai: GenAIMetrics | None = None, relay: Relay | None = None) -> CollectorRegistry:
    """A fresh registry with the collector's, the dispatcher's (and tracer's, GenAI metrics', relay's)
    metrics and this process's own."""
    registry = CollectorRegistry()
    # Registration order is the order of the families on /metrics.
    registry.register(FamilyTable(COLLECTOR_FAMILIES, collector))
    if not collector.scraping:
        registry.register(FamilyTable(REMOTE_WRITE_FAMILIES, collector))
    registry.register(FamilyTable(DISPATCHER_FAMILIES, dispatcher))
    if tracer is not None:
        registry.register(FamilyTable(TRACER_FAMILIES, tracer))
    if genai is not None:
        registry.register(FamilyTable(GENAI_METRIC_FAMILIES, genai))
    if relay is not None:
        registry.register(FamilyTable(RELAY_FAMILIES, relay))
    ProcessCollector(registry=registry)
    return registry


AGENTS_PER_SLICE = 1_000  # agents rendered between two yields to the event loop (a few ms)
CHUNK_BYTES = 64 * 1024   # written at a time; aiohttp waits for the socket to drain every 64 KiB


class _Agents:
    """The collector seen through some of its agents (current_scores reads `agents` and the rest)."""

    def __init__(self, collector: Collector, agents: dict[str, AgentState]) -> None:
        self._collector = collector
        self.agents = agents

    def __getattr__(self, name: str) -> object:
        return getattr(self._collector, name)


class _One(PrometheusCollector):
    """One family already built, for generate_latest."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterator[Metric]:
        yield self._metric


async def render_metrics_sliced(registry: CollectorRegistry, collector: Collector) -> bytes:
    """The whole /metrics document: the per-agent families, then the registry's. Written in slices of
    AGENTS_PER_SLICE agents and one family, yielding to the event loop in between: 10,000 agents are tens of ms
    of formatting. The agents and their alert counts are those of the first slice's moment. Tens of thousands
    of short-lived strings and no cycles: the cycle collector is paused (its passes over a large store were the
    spikes of this render, up to half again its median)."""
    with paused():  # (10,000 tuples would start a collection of the whole heap)
        agents = list(collector.agents.items())
        alert_counts = active_alert_counts(collector)
    families: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])  # up, health score, scrape duration
    for start in range(0, len(agents), AGENTS_PER_SLICE):
        with paused():
            some = _Agents(collector, dict(agents[start:start + AGENTS_PER_SLICE]))
            lines = _agent_lines(some, alert_counts)  # type: ignore[arg-type]
            for family, text in zip(families, lines):
                family.append("".join(line + "\n" for line in text).encode())
        await asyncio.sleep(0)
    parts = [part for head, family in zip(_AGENT_HEADS, families) for part in (head, *family)]
    for metric in registry.collect():  # builds one family at a time
        with paused():
            parts.append(generate_latest(_One(metric)))  # type: ignore[arg-type]
        await asyncio.sleep(0)
    return b"".join(parts)


@dataclass
class ExpositionStats:
    """What the /metrics handler did, exposed on /metrics."""

    renders: int = 0
    refused: int = 0   # 503: max_metrics_responses were being sent
    cut: int = 0       # clients disconnected for reading slower than metrics_write_timeout
    sending: int = 0   # responses being written now (max_responses at most)
    waiting: int = 0   # requests waiting for the rendering they share (they hold no slot)


class Exposition:
    """/metrics rendered once for everyone asking within `max_age` seconds (and while a rendering runs), sent
    to at most `max_responses` clients at once, each within `write_timeout` seconds: the body is held once,
    not once per connection, and a client that does not read is disconnected."""

    def __init__(self, registry: CollectorRegistry, collector: Collector, max_age: float, write_timeout: float,
                 max_responses: int) -> None:
        self.registry, self.collector = registry, collector
        self.max_age, self.write_timeout, self.max_responses = max_age, write_timeout, max_responses
        self.stats = ExpositionStats()
        self._body, self._rendered_at = b"", -math.inf
        self._rendering: asyncio.Future[bytes] | None = None

    async def body(self) -> bytes:
        """The current rendering: the last one while it is fresh, else the one running, else a new one."""
        if time.monotonic() - self._rendered_at < self.max_age:
            return self._body
        if self._rendering is None:
            self._rendering = asyncio.ensure_future(self._render())
        return await asyncio.shield(self._rendering)

    async def _render(self) -> bytes:
        try:
            self.stats.renders += 1
            self._body = await render_metrics_sliced(self.registry, self.collector)
            self._rendered_at = time.monotonic()
            return self._body
        finally:
            self._rendering = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve the shared rendering. Only writing takes one of max_responses slots: waiting for a rendering
        holds no body of its own, so every request that shares one is counted only once it sends."""
        self.stats.waiting += 1
        try:
            body = await self.body()
        finally:
            self.stats.waiting -= 1
        if self.stats.sending >= self.max_responses:
            self.stats.refused += 1
            raise web.HTTPServiceUnavailable(text=f"{self.max_responses} /metrics responses are being sent "
                                                  f"(max_metrics_responses); retry shortly",
                                             headers={"Retry-After": "1"})
        self.stats.sending += 1
        try:
            return await self._send(request, body)
        finally:
            self.stats.sending -= 1

    async def _send(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """Write `body` within write_timeout; a client reading slower is disconnected."""
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        response.content_length = len(body)
        try:
            await response.prepare(request)
            view = memoryview(body)
            async with asyncio.timeout(self.write_timeout):
                for start in range(0, len(body), CHUNK_BYTES):
                    await response.write(view[start:start + CHUNK_BYTES])
                await response.write_eof()
        except TimeoutError:
            self.stats.cut += 1
            log.debug("disconnecting a /metrics client slower than %.1f s", self.write_timeout)
            if request.transport is not None:
                request.transport.abort()
        return response


EXPOSITION_FAMILIES: tuple[Family[ExpositionStats], ...] = (
    Family("monitoring_metrics_renders", "counter", "Renderings of /metrics (one serves every request within "
                                                    "metrics_cache_seconds).", (), _single(lambda s: s.renders)),
    Family("monitoring_metrics_responses_refused", "counter", "/metrics requests answered 503: "
                                                              "max_metrics_responses were being sent.", (),
           _single(lambda s: s.refused)),
    Family("monitoring_metrics_responses_cut", "counter", "/metrics clients disconnected for reading slower than "
                                                          "metrics_write_timeout.", (), _single(lambda s: s.cut)),
    Family("monitoring_metrics_responses_sending", "gauge", "/metrics responses being sent now "
                                                            "(max_metrics_responses at most).", (),
           _single(lambda s: s.sending)),
    Family("monitoring_metrics_responses_waiting", "gauge", "/metrics requests waiting for the rendering they "
                                                            "share (they take no max_metrics_responses slot).", (),
           _single(lambda s: s.waiting)),
)


def metrics_handler(registry: CollectorRegistry,
                    collector: Collector) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """aiohttp handler serving the service's metrics in the Prometheus text format (see Exposition)."""
    settings = collector.settings
    exposition = Exposition(registry, collector, settings.metrics_cache_seconds, settings.metrics_write_timeout,
                            settings.max_metrics_responses)
    registry.register(FamilyTable(EXPOSITION_FAMILIES, exposition.stats))
    return exposition.handle
