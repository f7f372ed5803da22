"""Grafana dashboards (JSON model) as ConfigMaps for the Grafana sidecar. Pure builders.

Four dashboards, one ConfigMap each: the system overview, a per-agent drill-down (an
`agent` template variable), the seed's alert policy categories (coordination_health,
system_performance, reasoning_quality with the anomaly baselines) and alerts. Every query uses a `datasource` variable so the
dashboards work with whichever Prometheus data source Grafana has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config.labels import object_meta, system_labels
from ..config.system import SystemConfig
from .meta import agent_series_matcher

SCHEMA_VERSION = 39
# Kubernetes keeps the last-applied configuration in an annotation limited to 256 KiB.
MAX_DASHBOARD_BYTES = 262_144
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


# Queries name the agents' series through these tokens, filled in per system.
SEL, AGENT_SEL, SYSTEM = "<sel>", "<agent_sel>", "<system>"
REASONING_WINDOW, PLANNING_WINDOW = "<reasoning_window>", "<planning_window>"  # the anomaly baselines' windows
_AGENTS_UP = f'up{{{SEL}, agent_id!=""}}'


def _p95(histogram: str, selector: str, by: str = "agent_id") -> str:
    """The 95th percentile of a histogram over Grafana's rate interval, by `by` (none: over all series)."""
    group = f"{by}, le" if by else "le"
    return (f"histogram_quantile(0.95, sum by ({group}) "
            f"(rate({histogram}_bucket{{{selector}}}[$__rate_interval])))")


@dataclass(frozen=True)
class Panel:
    """One panel: its queries (legend -> PromQL with the tokens above), width out of 24, type and unit."""

    title: str
    queries: dict[str, str]
    width: int = 12
    kind: str = "timeseries"
    unit: str = "short"


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: title, panels (laid out left to right, 8 high) and whether it has the agent picker."""

    title: str
    panels: tuple[Panel, ...]
    agent_picker: bool = False


DASHBOARDS: dict[str, Dashboard] = {
    "overview": Dashboard("System overview", (
        Panel("Agents up", {"up": f"sum({_AGENTS_UP})", "down": f"sum({_AGENTS_UP} == bool 0)"}, 6, "stat"),
        Panel("Agent health score", {"{{agent_id}}": "monitoring_agent_health_score"}, 18),
        Panel("CPU usage %", {"{{agent_id}}": f"max by (agent_id) (agent_cpu_usage_percent{{{SEL}}})"},
              unit="percent"),
        Panel("Memory", {"{{agent_id}}": f"max by (agent_id) (agent_memory_usage_bytes{{{SEL}}})"}, unit="bytes"),
        Panel("Inter-agent communication",
              {"{{agent_id}} sent": f"sum by (agent_id) (rate(agent_messages_sent_total{{{SEL}}}[$__rate_interval]))",
               "{{agent_id}} received": ("sum by (agent_id) "
                                         f"(rate(agent_messages_received_total{{{SEL}}}[$__rate_interval]))")},
              unit="reqps"),
        Panel("Message delivery p95", {"{{agent_id}}": _p95("message_delivery_latency", SEL)}, unit="ms"),
        # the orchestrator's system metrics (seed 004)
        Panel("Active agents / capacity", {"active": f"sum(system_active_agents{{{SEL}}})",
                                           "capacity": f"sum(system_total_capacity{{{SEL}}})"}, 8),
        Panel("System utilisation %", {"utilisation": f"max(system_utilization_percent{{{SEL}}})"}, 8,
              unit="percent"),
        Panel("Transaction success rate", {"success": f"min(system_success_rate{{{SEL}}})"}, 8, unit="percentunit"),
        Panel("Transactions per second by status",
              {"{{status}}": f"sum by (status) (rate(system_transactions_total{{{SEL}}}[$__rate_interval]))"},
              unit="ops"),
        Panel("Message lag by topic", {"{{topic}}": f"max by (topic) (system_message_lag{{{SEL}}})"}),
    )),
    "agent": Dashboard("Agent drill-down", (
        Panel("Up", {"{{pod}}": f"up{{{AGENT_SEL}}}"}, 6, "stat"),
        Panel("Health score", {"score": 'monitoring_agent_health_score{agent_id=~"$agent"}'}, 18),
        Panel("CPU %", {"{{pod}}": f"agent_cpu_usage_percent{{{AGENT_SEL}}}"}, unit="percent"),
        Panel("Memory", {"{{pod}}": f"agent_memory_usage_bytes{{{AGENT_SEL}}}"}, unit="bytes"),
        Panel("Tasks per second by status",
              {"{{agent_type}} {{status}}": ("sum by (agent_type, status) "
                                             f"(rate(agent_tasks_total{{{AGENT_SEL}}}[$__rate_interval]))")},
              unit="ops"),
        Panel("Task duration p95", {"{{agent_type}}": _p95("agent_task_duration_seconds", AGENT_SEL, by="agent_type")},
              unit="s"),
        Panel("Active tasks", {"{{pod}}": f"agent_active_tasks{{{AGENT_SEL}}}"}),
        Panel("Response time", {"{{pod}}": f"agent_response_time_ms{{{AGENT_SEL}}}"}, unit="ms"),
        Panel("Errors per second by type",
              {"{{error_type}}": f"sum by (error_type) (rate(agent_errors_total{{{AGENT_SEL}}}[$__rate_interval]))"},
              unit="ops"),
        Panel("Error rate", {"{{pod}}": f"agent_error_rate{{{AGENT_SEL}}}"}, unit="percentunit"),
        Panel("Message latency p95 by direction",
              {"{{direction}}": _p95("agent_message_latency_ms", AGENT_SEL, by="direction")}, unit="ms"),
        Panel("Coordination time p95",
              {"p95": _p95("agent_coordination_efficiency", AGENT_SEL, by="")}, unit="s"),
        Panel("Utilisation", {"{{pod}} {{task_type}}": f"agent_utilization{{{AGENT_SEL}}}"}, unit="percentunit"),
        Panel("Scrape duration (collector)",
              {"seconds": 'monitoring_agent_last_scrape_duration_seconds{agent_id=~"$agent"}'}, unit="s"),
    ), agent_picker=True),
    "policies": Dashboard("Alert policies", (
        # coordination_health
        Panel("Coordination time p95 (coordination_health)",
              {"{{agent_id}}": _p95("agent_coordination_efficiency", SEL)}, unit="s"),
        Panel("Consensus success rate (coordination_health)",
              {"{{cluster_name}} {{consensus_algorithm}}": ("min by (cluster_name, consensus_algorithm) "
                                                            f"(consensus_success_rate{{{SEL}}})")},
              unit="percentunit"),
        # system_performance
        Panel("Message delivery p95 (system_performance)",
              {"{{source_cluster}} → {{destination_cluster}}": _p95("message_delivery_latency", SEL,
                                                                    by="source_cluster, destination_cluster")},
              unit="ms"),
        Panel("Utilisation (system_performance)",
              {"{{agent_id}}": f"max by (agent_id) (agent_utilization{{{SEL}}})"}, unit="percentunit"),
        # reasoning_quality: the value against its baseline band
        Panel("Reasoning-chain length vs baseline (reasoning_quality)",
              {"{{agent_id}} now": "agent:reasoning_chain_length:avg5m",
               "{{agent_id}} baseline": f"agent:reasoning_chain_length:mean{REASONING_WINDOW}"}),
        Panel("Planning success vs baseline (reasoning_quality)",
              {"{{agent_id}} now": "agent:planning_success_rate:avg5m",
               "{{agent_id}} baseline": f"agent:planning_success_rate:mean{PLANNING_WINDOW}"},
              unit="percentunit"),
        Panel("Firing alerts by category",
              {"{{category}}": f'sum by (category) (ALERTS{{alertstate="firing", system="{SYSTEM}", category!=""}})'},
              24),
    )),
    "alerts": Dashboard("Alerts", (
        Panel("Firing alerts by severity",
              {"{{severity}}": f'sum by (severity) (ALERTS{{alertstate="firing", system="{SYSTEM}"}})'}, 24),
        Panel("Firing alerts", {"{{alertname}} {{agent_id}}": f'ALERTS{{alertstate="firing", system="{SYSTEM}"}}'},
              24, "table"),
        Panel("Collector alerts active", {"{{severity}}": "monitoring_alerts_active"}),
        Panel("Collector scrape failures / s",
              {"failures": 'sum(rate(monitoring_scrapes_total{result="failure"}[$__rate_interval]))'}),
    )),
}


# Only with messaging.kafka: the backbone's lag and dead letters (Strimzi's Kafka Exporter) and KEDA's scaling.
KAFKA_NS = "<kafka_namespace>"
MESSAGING = Dashboard("Messaging", (
    Panel("Consumer lag by group and topic",
          {"{{consumergroup}} / {{topic}}": f'sum by (consumergroup, topic) (kafka_consumergroup_lag{{namespace="{KAFKA_NS}"}})'},
          24),
    Panel("Messages in per second by topic",
          {"{{topic}}": ("sum by (topic) (rate(kafka_topic_partition_current_offset"
                         f'{{namespace="{KAFKA_NS}"}}[$__rate_interval]))')}),
    Panel("Dead-lettered messages (10 min)",
          {"{{topic}}": ('sum by (topic) (increase(kafka_topic_partition_current_offset'
                         f'{{namespace="{KAFKA_NS}", topic="<dlq_topic>"}}[10m]))')}),
    Panel("Replicas KEDA runs",
          {"{{horizontalpodautoscaler}}": ('kube_horizontalpodautoscaler_status_current_replicas'
                                           f'{{{SEL}, horizontalpodautoscaler=~"keda-hpa-.*"}}')}, 24),
))


def _panels(panels: tuple[Panel, ...], fill: Callable[[str], str]) -> list[dict[str, Any]]:
    """Grafana panels with ids in order, flowed into rows of width 24."""
    out, x, y = [], 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        out.append({"id": panel_id, "type": panel.kind, "title": panel.title, "datasource": DATASOURCE,
                    "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
                    "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                    "targets": [{"refId": chr(65 + index), "datasource": DATASOURCE, "expr": fill(expr),
                                 "legendFormat": legend}
                                for index, (legend, expr) in enumerate(panel.queries.items())]})
        x += panel.width
    return out


def _variables(agent_picker: bool, fill: Callable[[str], str]) -> dict[str, Any]:
    variables: list[dict[str, Any]] = [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                        "label": "Data source", "current": {}, "hide": 0, "refresh": 1}]
    if agent_picker:
        agents = fill(f"label_values({_AGENTS_UP}, agent_id)")
        variables.append({"name": "agent", "type": "query", "label": "Agent", "datasource": DATASOURCE,
                          "query": {"query": agents, "refId": "agents"}, "definition": agents,
                          "refresh": 2, "includeAll": False, "multi": False, "current": {}, "hide": 0})
    return {"list": variables}


def dashboards(system: SystemConfig) -> dict[str, dict[str, Any]]:
    """slug -> Grafana dashboard JSON model."""
    sel = agent_series_matcher(system)
    alerts = system.monitoring.alerts
    tokens = {AGENT_SEL: f'{sel}, agent_id=~"$agent"', SEL: sel, SYSTEM: system.name,
              REASONING_WINDOW: alerts.reasoning_chain_anomaly.window,
              PLANNING_WINDOW: alerts.planning_success_anomaly.window}

    def fill(query: str) -> str:
        for token, value in tokens.items():
            query = query.replace(token, value)
        return query

    boards = dict(DASHBOARDS)
    kafka = system.messaging.kafka
    if kafka is not None:
        tokens[KAFKA_NS] = kafka.namespace
        tokens["<dlq_topic>"] = kafka.dlq_topic or ""
        boards["messaging"] = MESSAGING
    return {slug: {"uid": f"{system.name}-{slug}"[:40], "title": f"{system.name}: {board.title}",
                   "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": False,
                   "tags": [system.name, "agents"], "timezone": "browser", "time": {"from": "now-6h", "to": "now"},
                   "refresh": "30s", "templating": _variables(board.agent_picker, fill),
                   "annotations": {"list": []}, "panels": _panels(board.panels, fill)}
            for slug, board in boards.items()}


def dashboard_config_maps(system: SystemConfig) -> list[dict[str, Any]]:
    """One ConfigMap per dashboard, labelled and foldered for the Grafana sidecar."""
    settings = system.monitoring.dashboards
    out = []
    for slug, model in dashboards(system).items():
        body = json.dumps(model, indent=1, sort_keys=True)
        if len(body.encode()) >= MAX_DASHBOARD_BYTES:
            raise ValueError(f"dashboard {slug} is {len(body)} bytes, over the {MAX_DASHBOARD_BYTES}-byte limit")
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {**object_meta(system, f"{system.name}-dashboard-{slug}", system.monitoring.namespace,
                                               {**system_labels(system), settings.label: settings.label_value}),
                                 "annotations": {"grafana_folder": settings.folder}},
                    "data": {f"{system.name}-{slug}.json": body}})
    return out
