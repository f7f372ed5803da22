"""Builder of the PrometheusRule with the system's alert groups (pure; wire format).

Groups: availability, resources, Kubernetes workloads, multi-agent behaviour, and the
monitoring collector's own signals. Thresholds, `for` and on/off come from
`monitoring.alerts`; every alert carries severity, summary, description and runbook_url.
Agent series are selected by namespace (the agents' namespaces) and carry `agent_id`
(the ServiceMonitor's relabeling).
"""

from __future__ import annotations

from typing import Any

from ..config.lookups import agent_namespaces
from ..config.monitoring import AlertSetting
from ..config.system import SystemConfig
from .meta import operator_meta

BY_AGENT = "namespace, agent_id"
# Label matchers with quotes, kept out of f-string expressions.
HAS_AGENT_ID = 'agent_id!=""'
CRASH_LOOP = 'reason="CrashLoopBackOff"'
SUCCEEDED = 'result="success"'
FAILED_TASK = 'status="error"'


def _selector(system: SystemConfig, extra: str = "") -> str:
    namespaces = "|".join(agent_namespaces(system))
    return "{" + f'namespace=~"{namespaces}"' + (f", {extra}" if extra else "") + "}"


def _rule(system: SystemConfig, name: str, expr: str, setting: AlertSetting, severity: str, summary: str,
          description: str) -> dict[str, Any]:
    base = system.monitoring.runbook_base_url
    return {"alert": name, "expr": expr, "for": setting.for_,
            "labels": {"severity": severity, "system": system.name},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"{base}#{name.lower()}"}}


def _levels(system: SystemConfig, name: str, setting: AlertSetting, expr_for: Any, summary: str,
            description: str) -> list[dict[str, Any]]:
    """A warning and/or critical rule from one setting; `expr_for(threshold)` builds the expression."""
    rules = []
    for severity, threshold in (("warning", setting.warning), ("critical", setting.critical)):
        if threshold is not None:
            rules.append(_rule(system, name, expr_for(threshold), setting, severity,
                               summary, description.replace("THRESHOLD", f"{threshold:g}")))
    return rules


def rule_groups(system: SystemConfig) -> list[dict[str, Any]]:
    """The rule groups, each without its disabled alerts (and without empty groups)."""
    alerts = system.monitoring.alerts
    sel = lambda extra="": _selector(system, extra)  # noqa: E731 (short local helper)
    agent = "{{ $labels.agent_id }} in {{ $labels.namespace }}"
    groups: dict[str, list[tuple[AlertSetting, list[dict[str, Any]]]]] = {
        "availability": [
            (alerts.agent_down, [_rule(system, "AgentDown", f"up{sel(HAS_AGENT_ID)} == 0",
                                       alerts.agent_down, "critical", f"Agent {agent} is down",
                                       "Prometheus cannot scrape the agent's metrics endpoint.")]),
        ],
        "resources": [
            (alerts.high_cpu, _levels(system, "HighCpuUsage", alerts.high_cpu,
                                      lambda t: f"max by ({BY_AGENT}) (cpu_usage_percent{sel()}) > {t:g}",
                                      f"High CPU usage of {agent}",
                                      "CPU usage is {{ $value | humanize }}%, above THRESHOLD%.")),
            (alerts.high_memory, _levels(system, "HighMemoryUsage", alerts.high_memory,
                                         lambda t: f"max by ({BY_AGENT}) (memory_usage_percent{sel()}) > {t:g}",
                                         f"High memory usage of {agent}",
                                         "Memory usage is {{ $value | humanize }}%, above THRESHOLD%.")),
        ],
        "workloads": [
            (alerts.crash_looping, [_rule(
                system, "AgentCrashLooping",
                f"max_over_time(kube_pod_container_status_waiting_reason{sel(CRASH_LOOP)}[5m]) >= 1",
                alerts.crash_looping, "warning", "Agent pod {{ $labels.pod }} is crash looping",
                "Container {{ $labels.container }} of {{ $labels.namespace }}/{{ $labels.pod }} keeps restarting.")]),
            (alerts.replicas_mismatch, [_rule(
                system, "AgentReplicasMismatch",
                f"kube_deployment_spec_replicas{sel()} > kube_deployment_status_replicas_available{sel()}",
                alerts.replicas_mismatch, "warning",
                "Deployment {{ $labels.namespace }}/{{ $labels.deployment }} lacks replicas",
                "Fewer replicas are available than desired; check pending or failing pods.")]),
            (alerts.hpa_at_max, [_rule(
                system, "AgentHpaAtMaxReplicas",
                f"kube_horizontalpodautoscaler_status_current_replicas{sel()} "
                f">= kube_horizontalpodautoscaler_spec_max_replicas{sel()}",
                alerts.hpa_at_max, "warning",
                "HPA {{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} is at its maximum",
                "The agent cannot scale out further; raise scaling.max_replicas or its quota.")]),
            (alerts.pdb_unhealthy, [_rule(
                system, "AgentPdbNotEnoughHealthyPods",
                f"kube_poddisruptionbudget_status_current_healthy{sel()} "
                f"< kube_poddisruptionbudget_status_desired_healthy{sel()}",
                alerts.pdb_unhealthy, "warning",
                "PDB {{ $labels.namespace }}/{{ $labels.poddisruptionbudget }} has too few healthy pods",
                "Voluntary evictions (node drains) are blocked for this agent.")]),
        ],
        "multi-agent": [
            (alerts.message_latency_p95, _levels(
                system, "AgentMessageLatencyHigh", alerts.message_latency_p95,
                lambda t: f"histogram_quantile(0.95, sum by ({BY_AGENT}, le) "
                          f"(rate(agent_message_delivery_latency_seconds_bucket{sel()}[5m]))) > {t:g}",
                f"Slow message delivery to {agent}", "p95 message delivery latency is {{ $value | humanizeDuration }} "
                                                     "(threshold THRESHOLDs).")),
            (alerts.coordination_time_p95, _levels(
                system, "AgentCoordinationSlow", alerts.coordination_time_p95,
                lambda t: f"histogram_quantile(0.95, sum by ({BY_AGENT}, le) "
                          f"(rate(agent_coordination_duration_seconds_bucket{sel()}[5m]))) > {t:g}",
                f"Slow coordination in {agent}", "p95 coordination time is {{ $value | humanizeDuration }} "
                                                 "(threshold THRESHOLDs).")),
            (alerts.consensus_success_rate, _levels(
                system, "AgentConsensusFailing", alerts.consensus_success_rate,
                lambda t: f"sum by ({BY_AGENT}) (rate(agent_consensus_rounds_total{sel(SUCCEEDED)}[10m])) "
                          f"/ sum by ({BY_AGENT}) (rate(agent_consensus_rounds_total{sel()}[10m])) < {t:g}",
                f"Consensus failing in {agent}", "Only {{ $value | humanizePercentage }} of consensus rounds "
                                                 "succeed (threshold THRESHOLD).")),
            (alerts.task_error_rate, _levels(
                system, "AgentTaskErrorsHigh", alerts.task_error_rate,
                lambda t: f"sum by ({BY_AGENT}) (rate(agent_tasks_total{sel(FAILED_TASK)}[5m])) "
                          f"/ sum by ({BY_AGENT}) (rate(agent_tasks_total{sel()}[5m])) > {t:g}",
                f"Many failing tasks in {agent}", "{{ $value | humanizePercentage }} of tasks fail "
                                                  "(threshold THRESHOLD).")),
            (alerts.utilisation, _levels(
                system, "AgentUtilisationHigh", alerts.utilisation,
                lambda t: f"max by ({BY_AGENT}) (agent_utilization_ratio{sel()}) > {t:g}",
                f"{agent} is saturated", "Utilisation is {{ $value | humanizePercentage }} (threshold THRESHOLD).")),
        ],
        "collector": [
            (alerts.health_score_low, _levels(
                system, "AgentHealthScoreLow", alerts.health_score_low,
                lambda t: f"monitoring_agent_health_score < {t:g}",
                "Low health score of {{ $labels.agent_id }}",
                "The monitoring collector scores the agent {{ $value }} (threshold THRESHOLD).")),
            (alerts.scrape_failures, _levels(
                system, "CollectorScrapeFailures", alerts.scrape_failures,
                lambda t: 'sum(rate(monitoring_scrapes_total{result="failure"}[10m])) '
                          f"/ sum(rate(monitoring_scrapes_total[10m])) > {t:g}",
                "The monitoring collector fails to scrape agents",
                "{{ $value | humanizePercentage }} of scrapes fail (threshold THRESHOLD).")),
        ],
    }
    out = []
    for name, entries in groups.items():
        rules = [rule for setting, built in entries if setting.enabled for rule in built]
        if rules:
            out.append({"name": f"{system.name}.{name}", "rules": rules})
    return out


def prometheus_rule(system: SystemConfig) -> dict[str, Any]:
    """The PrometheusRule object holding every group."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": operator_meta(system, f"{system.name}-alerts"),
            "spec": {"groups": rule_groups(system)}}
