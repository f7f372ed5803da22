"""The course's two documents, `system_overview` and `performance_report`, with the project's extras.

Every key the course defines is there with its meaning and unit; what the project adds (health
scores, resource readings, scrape counters, this pod's psutil readings) sits beside them.

- Overview: agents by status with heartbeat age and registration time; alerts (total known,
  active, critical, warning); metrics (samples in the recent buffer, distinct agent:metric
  series in it, the collection interval).
- Report over the last N hours: per agent with samples in the window, its sample count,
  average and peak CPU and memory in percent (`health.cpu_metric`, `health.memory_metric`, bytes
  against the agent's memory limit) and the
  course's health score on those averages; system-wide trends; recommendations.
"""

from __future__ import annotations

import time
from collections import Counter
from statistics import fmean
from typing import Any

from .alerts import iso
from .health import (CollectorView, active_alert_counts, agent_health, distinct_alerts, health_score,
                     memory_percentages)
from .settings import Severity
from .system_metrics import SystemSampler

# The course's recommendation thresholds.
LOW_HEALTH, HIGH_CPU, HIGH_MEMORY, UNHEALTHY_SHARE = 70, 70, 80, 0.3


def system_overview(collector: CollectorView, sampler: SystemSampler | None = None) -> dict[str, Any]:
    """`{"system_overview": {timestamp, agents, alerts, metrics, ...}}` (see the module doc)."""
    now = time.time()
    counts = active_alert_counts(collector)
    details: dict[str, Any] = {}
    for agent_id, state in collector.agents.items():
        heard = state.last_success if state.last_success is not None else state.registered_at
        details[agent_id] = {"last_heartbeat_seconds_ago": round(now - heard, 3),
                             "registration_time": iso(state.registered_at),
                             **agent_health(collector, state, counts)}  # with its "status"
    statuses = Counter(detail["status"] for detail in details.values())
    active = distinct_alerts(collector.alerts.active.values())
    severities = Counter(alert.severity.value for alert in active)
    recent = collector.store.recent
    return {"system_overview": {
        "timestamp": iso(now),
        "agents": {"total_agents": len(details), "active_agents": statuses.get("active", 0),
                   "unhealthy_agents": statuses.get("unhealthy", 0) + statuses.get("lost", 0),
                   "agents_detail": details, "status_counts": dict(statuses)},
        "alerts": {"total_alerts": len(active) + len(distinct_alerts(collector.alerts.history)),
                   "active_alerts": len(active),
                   "critical_alerts": severities.get(Severity.CRITICAL.value, 0),
                   "warning_alerts": severities.get(Severity.WARNING.value, 0),
                   "alerts_by_severity": dict(severities)},
        "metrics": {"total_metrics_collected": len(recent),
                    "unique_metric_types": len({(sample.agent_id, sample.name) for sample in recent}),
                    "collection_interval_seconds": collector.settings.collection_interval,
                    "scrapes_ok": collector.stats.scrapes_ok, "scrapes_failed": collector.stats.scrapes_failed,
                    "samples": collector.stats.samples},
        "system_health": round(fmean(detail["health_score"] for detail in details.values()), 2) if details else 100.0,
        "system": sampler.latest if sampler else {},
    }}


def performance_report(collector: CollectorView, hours: float) -> dict[str, Any]:
    """`{"performance_report": {time_window_hours, report_timestamp, agent_performance, system_trends,
    recommendations, ...}}` over the last `hours` (see the module doc).

    Sample counts come from the recent buffer; CPU and memory from the per-series rolling
    windows, which reach further back for each agent. `coverage_seconds` says how far back the
    buffer actually reaches.
    """
    now = time.time()
    since = now - hours * 3600
    health = collector.settings.health
    in_window = Counter(sample.agent_id for sample in collector.store.recent if sample.timestamp >= since)
    unresolved = active_alert_counts(collector)
    fired = Counter(alert.agent_id for alert in (*collector.alerts.history, *collector.alerts.active.values())
                    if alert.started_at >= since)  # once, not once per agent
    performance: dict[str, Any] = {}
    all_cpu: list[float] = []
    all_memory: list[float] = []
    for agent_id, state in collector.agents.items():
        cpu = collector.store.values_since(agent_id, health.cpu_metric, since)
        memory = memory_percentages(collector.settings, state,
                                    collector.store.values_since(agent_id, health.memory_metric, since))
        if not (in_window[agent_id] or cpu or memory):
            continue  # as in the course: agents without data in the window are left out
        all_cpu += cpu
        all_memory += memory
        avg_cpu = fmean(cpu) if cpu else None
        avg_memory = fmean(memory) if memory else None
        performance[agent_id] = {
            "total_metrics": in_window[agent_id],
            "avg_cpu_usage": avg_cpu if avg_cpu is not None else 0, "max_cpu_usage": max(cpu, default=0),
            "avg_memory_usage": avg_memory if avg_memory is not None else 0,
            "max_memory_usage": max(memory, default=0),
            "health_score": health_score(avg_cpu, avg_memory, state.status.value == "active",
                                         unresolved.get(agent_id, 0)),
            "status": state.status.value, "alerts_in_period": fired[agent_id], "last_error": state.last_error}
    oldest = min((sample.timestamp for sample in collector.store.recent), default=now)
    return {"performance_report": {
        "time_window_hours": hours,
        "report_timestamp": iso(now),
        "agent_performance": performance,
        "system_trends": {"total_metrics_in_window": sum(in_window.values()),
                          "average_system_cpu": fmean(all_cpu) if all_cpu else 0,
                          "average_system_memory": fmean(all_memory) if all_memory else 0},
        "recommendations": recommendations(performance),
        "coverage_seconds": round(now - max(oldest, since), 1),
    }}


def recommendations(performance: dict[str, Any]) -> list[str]:
    """The course's advice: low health, high CPU, high memory, and a large share of unhealthy agents."""
    advice = []
    for agent_id, agent in performance.items():
        if agent["health_score"] < LOW_HEALTH:
            advice.append(f"{agent_id}: health score {agent['health_score']:.1f} is below {LOW_HEALTH}; check its "
                          f"alerts and resource use (last error: {agent.get('last_error') or 'none'})")
        if agent["avg_cpu_usage"] > HIGH_CPU:
            advice.append(f"{agent_id}: CPU averages {agent['avg_cpu_usage']:.1f}%; scale out (raise max_replicas) "
                          f"or raise its CPU request")
        if agent["avg_memory_usage"] > HIGH_MEMORY:
            advice.append(f"{agent_id}: memory averages {agent['avg_memory_usage']:.1f}%; raise its memory limit or "
                          f"look for a leak")
    unhealthy = sum(1 for agent in performance.values() if agent["health_score"] < LOW_HEALTH)
    if unhealthy > len(performance) * UNHEALTHY_SHARE:
        advice.append(f"{unhealthy} of {len(performance)} agents score below {LOW_HEALTH} (more than "
                      f"{UNHEALTHY_SHARE:.0%}); look for a shared cause (node, network, dependency) first")
    return advice
