"""Builder of the PrometheusRule with the system's alert groups (pure; wire format).

The alerts are a catalogue (`CATALOGUE`): group, name, the `monitoring.alerts` setting that
switches and tunes it, its PromQL, texts, severity and the seed's policy category (002:
coordination_health, system_performance, reasoning_quality), which becomes a `category` label.
Alerts with a fixed severity fire on a condition; the others get a warning and/or a critical rule
from the setting's thresholds. The reasoning_quality anomalies (`ANOMALIES`) add recording
rules for their rolling baselines.
Every alert carries severity, summary, description and runbook_url. Agent series are
selected by namespace (the agents' namespaces) and carry `agent_id` (the ServiceMonitor's
relabeling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config.backbone import consumer_group
from ..config.labels import CONTAINER_NAME
from ..config.monitoring import AlertSetting, AnomalySetting
from ..config.system import SystemConfig
from ..config.types import prom_duration_seconds
from .meta import agent_series_matcher, operator_meta

BY_AGENT = "namespace, agent_id"
# The seed's metric labels (002) each alert keeps beside the agent's.
BY_CLUSTER = f"{BY_AGENT}, cluster_name"
BY_ROUTE = f"{BY_AGENT}, source_cluster, destination_cluster"
# The seed's alert policy categories (002): groups, and a `category` label Alertmanager can route on.
COORDINATION_HEALTH, SYSTEM_PERFORMANCE, REASONING_QUALITY = "coordination_health", "system_performance", \
    "reasoning_quality"
AGENT = "{{ $labels.agent_id }} in {{ $labels.namespace }}"
# Label matchers with quotes, kept out of f-string expressions.
HAS_AGENT_ID = 'agent_id!=""'
CRASH_LOOP = 'reason="CrashLoopBackOff"'
FAILED_TASK = 'status=~"error|failure|failed"'
POD_READY = 'condition="true"'
MEMORY_LIMIT = f'resource="memory", container="{CONTAINER_NAME}"'
READY_FOR = "2m"  # a pod Ready this long without a break, yet not scraped, is cut off (not merely failing)

Selector = Callable[..., str]  # sel(extra="") -> '{namespace=~"<agent namespaces>", <extra>}'


@dataclass(frozen=True)
class AlertSpec:
    """One alert of the catalogue; `expr(sel, threshold)` writes its PromQL."""

    group: str
    name: str
    setting: str                               # field of monitoring.alerts
    expr: Callable[[Selector, float], str]
    summary: str
    description: str                           # THRESHOLD is replaced by the threshold
    severity: str | None = None                # fixed severity; None: levels from the thresholds
    category: str | None = None                # the seed's alert policy category (a label, for routing)


def _p95(metric: str, by: str) -> Callable[[Selector, float], str]:
    return lambda sel, t: (f"histogram_quantile(0.95, sum by ({by}, le) "
                           f"(rate({metric}_bucket{sel()}[5m]))) > {t:g}")


def _ratio(metric: str, matcher: str, window: str, comparison: str, by: str) -> Callable[[Selector, float], str]:
    return lambda sel, t: (f"sum by ({by}) (rate({metric}{sel(matcher)}[{window}])) "
                           f"/ sum by ({by}) (rate({metric}{sel()}[{window}])) {comparison} {t:g}")


def _highest(metric: str, by: str = BY_AGENT) -> Callable[[Selector, float], str]:
    return lambda sel, t: f"max by ({by}) ({metric}{sel()}) > {t:g}"


def _lowest(metric: str, by: str) -> Callable[[Selector, float], str]:
    return lambda sel, t: f"min by ({by}) ({metric}{sel()}) < {t:g}"


def _memory_percent(sel: Selector, t: float) -> str:
    """The agent's memory in bytes (seed 004) against its container's limit (kube-state-metrics; `max`, not
    `sum`: several kube-state-metrics replicas report the same limit), in percent."""
    return (f"100 * max by (namespace, pod, agent_id) (agent_memory_usage_bytes{sel()}) "
            f"/ on (namespace, pod) group_left () (max by (namespace, pod) "
            f"(kube_pod_container_resource_limits{sel(MEMORY_LIMIT)}) > 0) > {t:g}")


def _partitioned(sel: Selector, t: float) -> str:
    """Agents Prometheus cannot scrape whose pod the kubelet has reported Ready without a break for READY_FOR
    (a flapping or failing pod is AgentDown's alone), and which are not shutting down."""
    return (f"up{sel(HAS_AGENT_ID)} == 0 and on (namespace, pod) "
            f"(min_over_time(kube_pod_status_ready{sel(POD_READY)}[{READY_FOR}]) == 1) "
            f"unless on (namespace, pod) kube_pod_deletion_timestamp{sel()}")


CATALOGUE: tuple[AlertSpec, ...] = (
    AlertSpec("availability", "AgentDown", "agent_down", lambda sel, t: f"up{sel(HAS_AGENT_ID)} == 0",
              f"Agent {AGENT} is down", "Prometheus cannot scrape the agent's metrics endpoint.", "critical"),
    AlertSpec("availability", "AgentNetworkPartition", "network_partition", _partitioned,
              f"Agent {AGENT} is cut off", "The pod is Ready, yet Prometheus cannot reach its metrics endpoint: "
                                          "a network partition between them.", "critical"),
    AlertSpec("resources", "HighCpuUsage", "high_cpu", _highest("agent_cpu_usage_percent"),
              f"High CPU usage of {AGENT}", "CPU usage is {{ $value | humanize }}%, above THRESHOLD%."),
    AlertSpec("resources", "HighMemoryUsage", "high_memory", _memory_percent,
              f"High memory usage of {AGENT}",
              "Memory usage is {{ $value | humanize }}% of the container's limit, above THRESHOLD%."),
    AlertSpec("workloads", "AgentCrashLooping", "crash_looping",
              lambda sel, t: f"max_over_time(kube_pod_container_status_waiting_reason{sel(CRASH_LOOP)}[5m]) >= 1",
              "Agent pod {{ $labels.pod }} is crash looping",
              "Container {{ $labels.container }} of {{ $labels.namespace }}/{{ $labels.pod }} keeps restarting.",
              "warning"),
    AlertSpec("workloads", "AgentReplicasMismatch", "replicas_mismatch",
              lambda sel, t: f"kube_deployment_spec_replicas{sel()} > kube_deployment_status_replicas_available{sel()}",
              "Deployment {{ $labels.namespace }}/{{ $labels.deployment }} lacks replicas",
              "Fewer replicas are available than desired; check pending or failing pods.", "warning"),
    AlertSpec("workloads", "AgentHpaAtMaxReplicas", "hpa_at_max",
              lambda sel, t: (f"kube_horizontalpodautoscaler_status_current_replicas{sel()} "
                              f">= kube_horizontalpodautoscaler_spec_max_replicas{sel()}"),
              "HPA {{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} is at its maximum",
              "The agent cannot scale out further; raise scaling.max_replicas or its quota.", "warning"),
    AlertSpec("workloads", "AgentClusterCapacityLow", "cluster_capacity",
              lambda sel, t: (f"sum by (namespace) (kube_deployment_status_replicas_available{sel()}) "
                              f"/ sum by (namespace) (kube_deployment_spec_replicas{sel()}) < {t:g}"),
              "Agent cluster {{ $labels.namespace }} runs below capacity",
              "Only {{ $value | humanizePercentage }} of its desired agent replicas are available (threshold "
              "THRESHOLD)."),
    AlertSpec("workloads", "AgentPdbNotEnoughHealthyPods", "pdb_unhealthy",
              lambda sel, t: (f"kube_poddisruptionbudget_status_current_healthy{sel()} "
                              f"< kube_poddisruptionbudget_status_desired_healthy{sel()}"),
              "PDB {{ $labels.namespace }}/{{ $labels.poddisruptionbudget }} has too few healthy pods",
              "Voluntary evictions (node drains) are blocked for this agent.", "warning"),
    AlertSpec(SYSTEM_PERFORMANCE, "AgentMessageLatencyHigh", "message_latency_p95",
              _p95("message_delivery_latency", BY_ROUTE), f"Slow message delivery to {AGENT}",
              "p95 message delivery latency is {{ $value | printf \"%.0f\" }}ms (threshold THRESHOLDms).",
              category=SYSTEM_PERFORMANCE),
    AlertSpec(COORDINATION_HEALTH, "AgentCoordinationSlow", "coordination_time_p95",
              _p95("agent_coordination_efficiency", f"{BY_CLUSTER}, coordination_type"),
              f"Slow coordination in {AGENT}",
              "p95 coordination time is {{ $value | humanizeDuration }} (threshold THRESHOLDs).",
              category=COORDINATION_HEALTH),
    AlertSpec(COORDINATION_HEALTH, "AgentConsensusFailing", "consensus_success_rate",
              _lowest("consensus_success_rate", f"{BY_CLUSTER}, consensus_algorithm"),
              f"Consensus failing in {AGENT}",
              "Only {{ $value | humanizePercentage }} of consensus decisions succeed (threshold THRESHOLD).",
              category=COORDINATION_HEALTH),
    AlertSpec("multi-agent", "AgentTaskErrorsHigh", "task_error_rate",
              _ratio("agent_tasks_total", FAILED_TASK, "5m", ">", f"{BY_AGENT}, agent_type"),
              f"Many failing tasks in {AGENT}", "{{ $value | humanizePercentage }} of tasks fail (threshold "
                                                "THRESHOLD)."),
    AlertSpec(SYSTEM_PERFORMANCE, "AgentUtilisationHigh", "utilisation", _highest("agent_utilization", BY_CLUSTER),
              f"{AGENT} is saturated", "Utilisation is {{ $value | humanizePercentage }} (threshold THRESHOLD).",
              category=SYSTEM_PERFORMANCE),
    AlertSpec("collector", "AgentHealthScoreLow", "health_score_low",
              lambda sel, t: f"monitoring_agent_health_score < {t:g}", "Low health score of {{ $labels.agent_id }}",
              "The monitoring collector scores the agent {{ $value }} (threshold THRESHOLD)."),
    AlertSpec("collector", "CollectorScrapeFailures", "scrape_failures",
              lambda sel, t: ('sum(rate(monitoring_scrapes_total{result="failure"}[10m])) '
                              f"/ sum(rate(monitoring_scrapes_total[10m])) > {t:g}"),
              "The monitoring collector fails to scrape agents",
              "{{ $value | humanizePercentage }} of scrapes fail (threshold THRESHOLD)."),
)


def runbook_url(system: SystemConfig, alert: str) -> str:
    """The alert's section of docs/runbooks.md (GitHub's anchor: the heading in lower case)."""
    return f"{system.monitoring.runbook_base_url}#{alert.lower()}"


def _rules_of(system: SystemConfig, spec: AlertSpec, sel: Selector) -> list[dict[str, Any]]:
    """The rules of one catalogue entry: one at its fixed severity, or one per configured threshold."""
    setting: AlertSetting = getattr(system.monitoring.alerts, spec.setting)
    if not setting.enabled:
        return []
    levels = ([(spec.severity, 0.0)] if spec.severity is not None else
              [(severity, threshold) for severity, threshold in (("warning", setting.warning),
                                                                 ("critical", setting.critical))
               if threshold is not None])
    return [{"alert": spec.name, "expr": spec.expr(sel, threshold), "for": setting.for_,
             "labels": {"severity": severity, "system": system.name, **region_label(system),
                        **({"category": spec.category} if spec.category else {})},
             "annotations": {"summary": spec.summary,
                             "description": spec.description.replace("THRESHOLD", f"{threshold:g}"),
                             "runbook_url": runbook_url(system, spec.name)}}
            for severity, threshold in levels]


@dataclass(frozen=True)
class AnomalySpec:
    """An anomaly alert of the reasoning_quality category: `recent(sel)` is the metric's 5-minute value per agent
    (recorded as `agent:<series>:avg5m`), which the alert compares with its baseline."""

    name: str
    setting: str      # field of monitoring.alerts (an AnomalySetting)
    series: str       # the recorded series' name
    recent: Callable[[Selector], str]
    summary: str


# The recorded 5-minute values are never NaN: one NaN sample would make the baseline's mean and deviation
# NaN for a whole window (and silence the alert). No observations in 5 minutes record nothing instead.
def _histogram_mean(metric: str) -> Callable[[Selector], str]:
    return lambda sel: (f"sum by ({BY_AGENT}) (rate({metric}_sum{sel()}[5m])) "
                        f"/ (sum by ({BY_AGENT}) (rate({metric}_count{sel()}[5m])) > 0)")


def _gauge_mean(metric: str) -> Callable[[Selector], str]:
    return lambda sel: f"avg by ({BY_AGENT}) (avg_over_time({metric}{sel()}[5m])) > -Inf"


ANOMALIES: tuple[AnomalySpec, ...] = (
    AnomalySpec("AgentReasoningAnomaly", "reasoning_chain_anomaly", "reasoning_chain_length",
                _histogram_mean("reasoning_chain_length"), f"Unusual reasoning-chain length in {AGENT}"),
    AnomalySpec("AgentPlanningAnomaly", "planning_success_anomaly", "planning_success_rate",
                _gauge_mean("planning_success_rate"), f"Unusual planning success in {AGENT}"),
)
EPSILON = "1e-9"  # floor of a baseline's deviation: a flat baseline makes any change an anomaly


def _anomaly_rules(system: SystemConfig, spec: AnomalySpec, sel: Selector) -> list[dict[str, Any]]:
    """Recording rules for the metric's 5-minute value and its rolling baseline (mean and standard deviation
    over the setting's window), and an alert when the z-score leaves the sensitivity's band.

    With a `season`, the baseline is the same `window` one season ago, centred on this time of day or week
    (offset season - window/2); until that history exists (and wherever it is missing) the rolling
    baseline applies (`or`)."""
    setting: AnomalySetting = getattr(system.monitoring.alerts, spec.setting)
    if not setting.enabled:
        return []
    recent, window = f"agent:{spec.series}:avg5m", setting.window
    mean, deviation = f"agent:{spec.series}:mean{window}", f"agent:{spec.series}:stddev{window}"
    rules = [{"record": recent, "expr": spec.recent(sel)},
             {"record": mean, "expr": f"avg_over_time({recent}[{window}])"},
             {"record": deviation, "expr": f"stddev_over_time({recent}[{window}])"}]
    z_score = f"({recent} - {mean}) / clamp_min({deviation}, {EPSILON})"
    baseline = f"its {window} baseline"
    if setting.season is not None:
        # Integer milliseconds: Prometheus accepts no fractions or exponents in a duration.
        offset = f"{int(prom_duration_seconds(setting.season) * 1000 - prom_duration_seconds(window) * 500)}ms"
        seasonal_mean = f"agent:{spec.series}:seasonal_mean{window}_{setting.season}"
        seasonal_deviation = f"agent:{spec.series}:seasonal_stddev{window}_{setting.season}"
        # The season's window counts once it holds most of the samples the last window does (no partial
        # history); its deviation is at least the rolling one (day-to-day drift is not an anomaly).
        covered = (f"count_over_time({recent}[{window}] offset {offset}) "
                   f">= 0.8 * count_over_time({recent}[{window}])")
        rules += [{"record": seasonal_mean, "expr": f"avg_over_time({recent}[{window}] offset {offset}) "
                                                    f"and on ({BY_AGENT}) ({covered})"},
                  {"record": seasonal_deviation, "expr": f"stddev_over_time({recent}[{window}] offset {offset})"}]
        spread = f"({seasonal_deviation} > {deviation} or {deviation})"
        z_score = f"({recent} - {seasonal_mean}) / clamp_min({spread}, {EPSILON}) or {z_score}"
        baseline = f"its baseline ({window} one {setting.season} season ago, else the last {window})"
    rules.append(
        {"alert": spec.name, "expr": f"abs({z_score}) > {setting.band:g}", "for": setting.for_,
         "labels": {"severity": setting.severity.value, "system": system.name, "category": REASONING_QUALITY,
                    **region_label(system)},
         "annotations": {"summary": spec.summary,
                         "description": (f"{spec.series} is {{{{ $value | humanize }}}} standard deviations from "
                                         f"{baseline} (band {setting.band:g}, sensitivity "
                                         f"{setting.sensitivity:g})."),
                         "runbook_url": runbook_url(system, spec.name)}})
    return rules


def _histogram_p95(metric: str, by: str) -> Callable[[Selector], str]:
    return lambda sel: f"histogram_quantile(0.95, sum by ({by}, le) (rate({metric}_bucket{sel()}[WINDOW])))"


# The multi-agent series kept at lower resolutions (the seed's retention tiers: 5m for 7 days, 1h for 90):
# record name suffix -> PromQL over a window (WINDOW) and the system's agent selector (sel()).
DOWNSAMPLED: dict[str, Callable[[Selector], str]] = {
    "agent_coordination_efficiency:p95": _histogram_p95("agent_coordination_efficiency", BY_CLUSTER),
    "message_delivery_latency:p95": _histogram_p95("message_delivery_latency", BY_ROUTE),
    "consensus_success_rate:avg": lambda sel: (
        f"avg by ({BY_CLUSTER}) (avg_over_time(consensus_success_rate{sel()}[WINDOW]))"),
    "agent_tasks:error_ratio": lambda sel: (
        f"sum by ({BY_AGENT}) (rate(agent_tasks_total{sel(FAILED_TASK)}[WINDOW])) "
        f"/ sum by ({BY_AGENT}) (rate(agent_tasks_total{sel()}[WINDOW]))"),
    "agent_utilization:avg": lambda sel: (
        f"avg by ({BY_CLUSTER}) (avg_over_time(agent_utilization{sel()}[WINDOW]))"),
    "reasoning_chain_length:mean": lambda sel: (
        f"sum by ({BY_CLUSTER}) (rate(reasoning_chain_length_sum{sel()}[WINDOW])) "
        f"/ (sum by ({BY_CLUSTER}) (rate(reasoning_chain_length_count{sel()}[WINDOW])) > 0)"),
    "planning_success_rate:avg": lambda sel: (
        f"avg by ({BY_CLUSTER}) (avg_over_time(planning_success_rate{sel()}[WINDOW]))"),
}
RESOLUTIONS = ("5m", "1h")


def downsample_groups(system: SystemConfig, sel: Selector) -> list[dict[str, Any]]:
    """One recording group per resolution, evaluated at that interval: `agent:<series>:<resolution>`.
    What keeps each tier for its time is the long-term store's (see README: Retention tiers)."""
    return [{"name": f"{system.name}.downsample-{resolution}", "interval": resolution,
             "rules": [{"record": f"agent:{name}_{resolution}", "expr": expr(sel).replace("WINDOW", resolution)}
                       for name, expr in DOWNSAMPLED.items()]}
            for resolution in RESOLUTIONS]


ESCALATED = "AlertEscalated"


def escalation_rules(system: SystemConfig) -> list[dict[str, Any]]:
    """With an escalation policy: an alert, per severity, for each of this system's alerts still firing after
    the policy's time, labelled `escalation: secondary` (Alertmanager sends it to the secondary / backup)."""
    escalation = system.monitoring.escalation
    if escalation is None:
        return []
    rules = []
    for severity, after in (("critical", escalation.critical_after), ("warning", escalation.warning_after)):
        firing = (f'max without (alertstate) (ALERTS{{alertstate="firing", system="{system.name}", '
                  f'severity="{severity}", alertname!="{ESCALATED}"}})')
        rules.append({"alert": ESCALATED, "expr": f'label_replace({firing}, "escalated_alert", "$1", "alertname", '
                                                   f'"(.+)")',
                      "for": after, "labels": {"escalation": "secondary", "system": system.name,
                                               **region_label(system)},
                      "annotations": {"summary": f"{{{{ $labels.escalated_alert }}}} unresolved for {after}",
                                      "description": "Still firing after the escalation time; the secondary "
                                                     "(business hours) or backup on-call (after hours) is notified.",
                                      "runbook_url": runbook_url(system, ESCALATED)}})
    return rules


def region_label(system: SystemConfig) -> dict[str, str]:
    """A region stack's alerts say which region (region stacks share the system's name and alerts)."""
    return {"region": system.region.name} if system.region is not None else {}


def messaging_rules(system: SystemConfig) -> list[dict[str, Any]]:
    """With Kafka: consumer lag that outgrows what KEDA adds consumers for, and a growing dead-letter topic
    (from Strimzi's Kafka Exporter, `spec.kafkaExporter` of the Kafka cluster)."""
    kafka = system.messaging.kafka
    if kafka is None:
        return []
    # The lag KEDA's consumers at their most can work off: threshold x max_replicas per group (the largest of
    # the agents sharing it); beyond that, scaling out no longer helps.
    limits: dict[str, int] = {}
    for agent in system.agents:
        if agent.consumes:
            threshold = (agent.scaling.event_driven.lag_threshold if agent.scaling.event_driven is not None
                         and agent.scaling.event_driven.lag_threshold else kafka.consumer_lag_threshold)
            group = consumer_group(agent)
            limits[group] = max(limits.get(group, 0), threshold * agent.scaling.max_replicas)
    rules = []
    labels = {"system": system.name, "category": SYSTEM_PERFORMANCE, **region_label(system)}
    if limits:
        expr = " or ".join(f'sum by (consumergroup, topic) (kafka_consumergroup_lag{{namespace="{kafka.namespace}", '
                           f'consumergroup="{group}"}}) > {limit}' for group, limit in sorted(limits.items()))
        rules.append({"alert": "KafkaConsumerLagHigh", "expr": expr,
                      "for": "10m", "labels": {**labels, "severity": "warning"},
                      "annotations": {"summary": "Consumer group {{ $labels.consumergroup }} lags on "
                                                 "{{ $labels.topic }}",
                                      "description": "{{ $value | humanize }} messages wait, more than its consumers "
                                                     "work off at their maximum replicas (lag threshold x "
                                                     "max_replicas).",
                                      "runbook_url": runbook_url(system, "KafkaConsumerLagHigh")}})
    if kafka.dlq_topic is not None:
        rules.append({"alert": "KafkaDeadLettersGrowing",
                      "expr": f'sum by (topic) (increase(kafka_topic_partition_current_offset{{namespace='
                              f'"{kafka.namespace}", topic="{kafka.dlq_topic}"}}[10m])) > 0',
                      "for": "5m", "labels": {**labels, "severity": "warning"},
                      "annotations": {"summary": "Messages are dead-lettered to {{ $labels.topic }}",
                                      "description": "{{ $value | humanize }} messages in the last 10 minutes "
                                                     "failed processing and went to the dead-letter topic.",
                                      "runbook_url": runbook_url(system, "KafkaDeadLettersGrowing")}})
    return rules


def rule_groups(system: SystemConfig) -> list[dict[str, Any]]:
    """The rule groups in catalogue order, each without its disabled alerts (and without empty groups)."""
    agents = agent_series_matcher(system)

    def sel(extra: str = "") -> str:
        return "{" + agents + (f", {extra}" if extra else "") + "}"

    groups: dict[str, list[dict[str, Any]]] = {}
    for spec in CATALOGUE:
        groups.setdefault(spec.group, []).extend(_rules_of(system, spec, sel))
    for anomaly in ANOMALIES:
        groups.setdefault(REASONING_QUALITY, []).extend(_anomaly_rules(system, anomaly, sel))
    groups["messaging"] = messaging_rules(system)
    groups["escalation"] = escalation_rules(system)
    return [*({"name": f"{system.name}.{name}", "rules": rules} for name, rules in groups.items() if rules),
            *downsample_groups(system, sel)]


def prometheus_rule(system: SystemConfig) -> dict[str, Any]:
    """The PrometheusRule object holding every group."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": operator_meta(system, f"{system.name}-alerts"),
            "spec": {"groups": rule_groups(system)}}
