"""Prometheus exposition of the collector's state through prometheus_client.

Values are read from the collector at scrape time (a custom collector), so nothing is
updated per sample on the hot path. The handler factory follows prometheus_client's
aiohttp exposition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PrometheusCollector

from .health import active_alert_counts, agent_health

if TYPE_CHECKING:
    from .collector import Collector
    from .notifiers import Dispatcher
    from .tracing.model import Tracer


class CollectorMetrics(PrometheusCollector):
    """Per-agent up/health/scrape duration, alerts by severity, and collector internals."""

    def __init__(self, collector: "Collector", dispatcher: "Dispatcher") -> None:
        self._collector = collector
        self._dispatcher = dispatcher

    def collect(self) -> Iterator[Metric]:
        collector = self._collector
        up = GaugeMetricFamily("monitoring_agent_up", "1 if the agent's last scrapes succeeded.", labels=["agent_id"])
        score = GaugeMetricFamily("monitoring_agent_health_score", "Agent health score (0-100).",
                                  labels=["agent_id"])
        duration = GaugeMetricFamily("monitoring_agent_last_scrape_duration_seconds",
                                     "Duration of the agent's last scrape.", labels=["agent_id"])
        counts = active_alert_counts(collector)
        for agent_id, state in collector.agents.items():
            up.add_metric([agent_id], 1.0 if state.status.value == "active" else 0.0)
            score.add_metric([agent_id], agent_health(collector, state, counts)["health_score"])
            duration.add_metric([agent_id], state.last_scrape_duration)
        yield from (up, score, duration)

        statuses = Counter(state.status.value for state in collector.agents.values())
        by_status = GaugeMetricFamily("monitoring_agents", "Registered agents by heartbeat status.",
                                      labels=["status"])
        for status in ("pending", "active", "unhealthy", "lost"):
            by_status.add_metric([status], statuses.get(status, 0))
        yield by_status

        severities = Counter(alert.severity.value for alert in collector.alerts.active.values())
        alerts = GaugeMetricFamily("monitoring_alerts_active", "Active alerts by severity.", labels=["severity"])
        for severity in ("info", "warning", "critical"):
            alerts.add_metric([severity], severities.get(severity, 0))
        yield alerts
        yield CounterMetricFamily("monitoring_alerts_fired", "Alerts raised since start.",
                                  value=collector.alerts.fired_total)

        scrapes = CounterMetricFamily("monitoring_scrapes", "Agent scrapes by result.", labels=["result"])
        scrapes.add_metric(["success"], collector.stats.scrapes_ok)
        scrapes.add_metric(["failure"], collector.stats.scrapes_failed)
        yield scrapes
        yield CounterMetricFamily("monitoring_samples", "Samples collected.", value=collector.stats.samples)
        yield CounterMetricFamily("monitoring_series_dropped", "Series refused by the per-agent series limit.",
                                  value=collector.store.dropped_series)
        lag = GaugeMetricFamily("monitoring_scrape_lag_seconds", "Scrape start delay behind schedule.",
                                labels=["quantile"])
        for quantile in (0.5, 0.99):
            lag.add_metric([str(quantile)], collector.stats.lag_quantile(quantile))
        yield lag

        notifications = CounterMetricFamily("monitoring_alert_notifications", "Alert deliveries by handler.",
                                            labels=["handler", "result"])
        for name, count in self._dispatcher.delivered.items():
            notifications.add_metric([name, "success"], count)
        for name, count in self._dispatcher.failed.items():
            notifications.add_metric([name, "failure"], count)
        yield notifications
        yield CounterMetricFamily("monitoring_alert_notifications_dropped", "Alert changes dropped (queue full).",
                                  value=self._dispatcher.dropped)


class TracerMetrics(PrometheusCollector):
    """Spans received, traces and spans live, what the bounds dropped, finish errors."""

    def __init__(self, tracer: "Tracer") -> None:
        self._tracer = tracer

    def collect(self) -> Iterator[Metric]:
        stats = self._tracer.stats
        received = CounterMetricFamily("monitoring_spans_received", "Spans received, by source.", labels=["source"])
        for source, count in stats.spans_received.items():
            received.add_metric([source], count)
        yield received
        yield GaugeMetricFamily("monitoring_traces_live", "Traces held in memory.", value=len(self._tracer.traces))
        yield GaugeMetricFamily("monitoring_spans_live", "Spans held in memory.", value=self._tracer.live_spans)
        dropped = CounterMetricFamily("monitoring_traces_dropped", "Traces dropped, by reason.", labels=["reason"])
        dropped.add_metric(["limit"], stats.dropped_traces)
        dropped.add_metric(["retention"], stats.evicted_traces)
        yield dropped
        yield CounterMetricFamily("monitoring_spans_dropped", "Spans refused by the per-trace limit.",
                                  value=stats.dropped_spans)
        errors = CounterMetricFamily("monitoring_span_finish_errors", "finish_span calls that did nothing.",
                                     labels=["reason"])
        errors.add_metric(["unknown"], stats.finish_unknown)
        errors.add_metric(["duplicate"], stats.finish_duplicate)
        yield errors


def build_registry(collector: "Collector", dispatcher: "Dispatcher", tracer: "Tracer | None" = None) -> CollectorRegistry:
    """A fresh registry with the collector's (and tracer's) metrics and this process's own."""
    registry = CollectorRegistry()
    registry.register(CollectorMetrics(collector, dispatcher))
    if tracer is not None:
        registry.register(TracerMetrics(tracer))
    ProcessCollector(registry=registry)
    return registry


def metrics_handler(registry: CollectorRegistry) -> Callable[[web.Request], Awaitable[web.Response]]:
    """aiohttp handler serving `registry` in the Prometheus text format."""

    async def handle(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle
