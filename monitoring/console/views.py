"""What each console page shows, assembled from the collector and the tracer (pure reads, no HTML).

Every value here may come from agents or spans: the templates escape them (Jinja2 autoescape).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from ..alerts import Alert, iso
from ..collector import Collector
from ..health import active_alert_counts, agent_health, memory_percentages
from ..settings import Severity
from ..tracing.model import Tracer

SPARK_POINTS = 30          # readings per sparkline (the newest); x is the reading's index, y 0..100 (top)
SEVERITY_ORDER = {Severity.EMERGENCY.value: 0, Severity.CRITICAL.value: 1, Severity.WARNING.value: 2,
                  Severity.INFO.value: 3}
RESOLVED_SHOWN = 100
ACTIVE_SHOWN = 500  # per severity: a page stays small when thousands fire (the counts say how many)
TRACES_SHOWN = 100
SERIES_SHOWN = 200


def sparkline(values: list[float], top: float = 100.0) -> str:
    """SVG polyline points for `values` on a 0..top scale (clipped), oldest left, in a viewBox of
    (SPARK_POINTS - 1) x 100 with whole numbers (a sparkline is 24 pixels high); "" for fewer than two."""
    values = [value for value in values[-SPARK_POINTS:] if math.isfinite(value)]  # agents may report NaN
    if len(values) < 2:
        return ""
    offset = SPARK_POINTS - len(values)  # fewer readings start further right
    scale = 100 / top
    return " ".join([f"{offset + index},{100 - round(min(max(value * scale, 0), 100))}"
                     for index, value in enumerate(values)])


def _readings(collector: Collector, agent_id: str) -> tuple[list[float], list[float]]:
    """The agent's CPU and memory (percent) from their rolling windows (one series each), oldest first."""
    health, state = collector.settings.health, collector.agents[agent_id]
    cpu = collector.store.series_values(agent_id, health.cpu_metric)
    memory = memory_percentages(collector.settings, state, collector.store.series_values(agent_id,
                                                                                         health.memory_metric))
    return cpu, memory


def _seconds_since(moment: float, now: float) -> int:
    """Whole seconds from `moment` to `now`; total (an absurd or non-finite time counts as 0 s or the longest
    age a float holds), so a page never fails on a date."""
    age = now - moment
    return round(age) if math.isfinite(age) else (_LONGEST if age > 0 else 0)


_LONGEST = 2**53  # seconds: the age shown for a time infinitely long ago


def _alert(alert: Alert, now: float) -> dict[str, Any]:
    return {**alert.as_dict(), "age_seconds": _seconds_since(alert.started_at, now),
            "resolved_seconds_ago": _seconds_since(alert.resolved_at, now) if alert.resolved_at is not None
            else None}


def _by_severity(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda alert: (SEVERITY_ORDER.get(alert.severity.value, 9), -alert.started_at))


def overview(collector: Collector) -> dict[str, Any]:
    """Agents (worst health first) with their sparklines, active alerts and the system's health."""
    now = time.time()
    counts = active_alert_counts(collector)
    agents = []
    for agent_id, state in collector.agents.items():
        cpu, memory = _readings(collector, agent_id)
        agents.append({"agent_id": agent_id, **agent_health(collector, state, counts),
                       "cpu_points": sparkline(cpu), "memory_points": sparkline(memory)})
    agents.sort(key=lambda agent: (agent["health_score"], agent["agent_id"]))
    statuses = Counter(agent["status"] for agent in agents)
    active = _by_severity(list(collector.alerts.active.values()))
    severities = Counter(alert.severity.value for alert in active)
    scores = [agent["health_score"] for agent in agents]
    sampler = collector.sampler
    return {"agents": agents, "statuses": dict(statuses), "alerts": [_alert(alert, now) for alert in active[:20]],
            "alert_count": len(active), "severities": dict(severities),
            "system_health": round(sum(scores) / len(scores), 1) if scores else None,
            "scrapes_ok": collector.stats.scrapes_ok, "scrapes_failed": collector.stats.scrapes_failed,
            "pod": sampler.latest if sampler else {}, "timestamp": iso(now)}


def agent_page(collector: Collector, tracer: Tracer, agent_id: str) -> dict[str, Any] | None:
    """One agent: health, its series' latest values, its alerts and the traces it took part in."""
    state = collector.agents.get(agent_id)
    if state is None:
        return None
    now = time.time()
    cpu, memory = _readings(collector, agent_id)
    series = sorted(collector.store.latest_series(agent_id), key=lambda item: (item[0], item[1]))
    alerts = collector.alerts
    traces = tracer.recent(agent_id, limit=20)
    return {"agent_id": agent_id, **agent_health(collector, state, active_alert_counts(collector)),
            "info": dict(state.info), "source": state.source, "metrics_endpoint": state.metrics_endpoint,
            "cpu_points": sparkline(cpu), "memory_points": sparkline(memory),
            "series": [{"name": name, "labels": ", ".join(f"{key}={value}" for key, value in labels), "value": value}
                       for name, labels, value in series[:SERIES_SHOWN]],
            "series_count": len(series),
            "active_alerts": [_alert(alert, now) for alert in _by_severity(
                [alert for alert in alerts.active.values() if alert.agent_id == agent_id])],
            "resolved_alerts": [_alert(alert, now) for alert in reversed(alerts.history)
                                if alert.agent_id == agent_id][:20],
            "traces": [trace_row(trace) for trace in traces]}


def alerts_page(collector: Collector) -> dict[str, Any]:
    """Active alerts by severity, then the most recently resolved."""
    now = time.time()
    active = _by_severity(list(collector.alerts.active.values()))
    resolved = list(collector.alerts.history)[-RESOLVED_SHOWN:]
    resolved.reverse()
    groups: dict[str, list[dict[str, Any]]] = {}
    counts: Counter[str] = Counter()
    for alert in active:
        counts[alert.severity.value] += 1
        if counts[alert.severity.value] <= ACTIVE_SHOWN:
            groups.setdefault(alert.severity.value, []).append(_alert(alert, now))
    return {"groups": groups, "counts": dict(counts), "active_count": len(active),
            "resolved": [_alert(alert, now) for alert in resolved]}


def trace_row(trace: Any) -> dict[str, Any]:
    return {"trace_id": trace.trace_id, "duration_ms": round(trace.duration * 1000, 1), "spans": len(trace.spans),
            "open_spans": trace.open_spans, "agents": sorted(trace.agents),
            "root_operations": sorted({span.operation for span in trace.spans.values() if span.parent_id is None})[:5]}


def traces_page(tracer: Tracer, agent_id: str | None) -> dict[str, Any]:
    """Recent traces, slowest first, optionally those an agent took part in."""
    return {"traces": [trace_row(trace) for trace in tracer.recent(agent_id or None, TRACES_SHOWN)],
            "agent_filter": agent_id or "", "trace_count": len(tracer.traces)}
