"""Grafana dashboards (JSON model) as ConfigMaps for the Grafana sidecar. Pure builders.

Three dashboards, one ConfigMap each: the system overview, a per-agent drill-down (an
`agent` template variable) and alerts. Every query uses a `datasource` variable so the
dashboards work with whichever Prometheus data source Grafana has.
"""

from __future__ import annotations

import json
from typing import Any

from ..config.labels import object_meta, system_labels
from ..config.lookups import agent_namespaces
from ..config.system import SystemConfig

SCHEMA_VERSION = 39
# Kubernetes keeps the last-applied configuration in an annotation limited to 256 KiB.
MAX_DASHBOARD_BYTES = 262_144
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _panel(panel_id: int, title: str, exprs: dict[str, str], x: int, y: int, width: int = 12,
           kind: str = "timeseries", unit: str = "short") -> dict[str, Any]:
    return {"id": panel_id, "type": kind, "title": title, "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": width, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + index), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                        for index, (legend, expr) in enumerate(exprs.items())]}


def _variables(extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    datasource = {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
                  "current": {}, "hide": 0, "refresh": 1}
    return {"list": [datasource, *(extra or [])]}


def _dashboard(system: SystemConfig, slug: str, title: str, panels: list[dict[str, Any]],
               variables: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"uid": f"{system.name}-{slug}"[:40], "title": f"{system.name}: {title}", "schemaVersion": SCHEMA_VERSION,
            "version": 1, "editable": False, "tags": [system.name, "agents"], "timezone": "browser",
            "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
            "templating": _variables(variables), "annotations": {"list": []}, "panels": panels}


def dashboards(system: SystemConfig) -> dict[str, dict[str, Any]]:
    """slug -> Grafana dashboard JSON model."""
    ns = "|".join(agent_namespaces(system))
    sel = f'namespace=~"{ns}"'
    agent_sel = f'{sel}, agent_id=~"$agent"'
    overview = [
        _panel(1, "Agents up", {"up": f'sum(up{{{sel}, agent_id!=""}})',
                                "down": f'sum(up{{{sel}, agent_id!=""}} == bool 0)'}, 0, 0, 6, "stat"),
        _panel(2, "Agent health score", {"{{agent_id}}": "monitoring_agent_health_score"}, 6, 0, 18),
        _panel(3, "CPU usage %", {"{{agent_id}}": f"max by (agent_id) (cpu_usage_percent{{{sel}}})"}, 0, 8,
               unit="percent"),
        _panel(4, "Memory usage %", {"{{agent_id}}": f"max by (agent_id) (memory_usage_percent{{{sel}}})"}, 12, 8,
               unit="percent"),
        _panel(5, "Inter-agent messages (p95 latency)",
               {"{{agent_id}}": "histogram_quantile(0.95, sum by (agent_id, le) "
                                f"(rate(agent_message_delivery_latency_seconds_bucket{{{sel}}}[$__rate_interval])))"},
               0, 16, unit="s"),
        _panel(6, "Messages per second",
               {"{{agent_id}}": "sum by (agent_id) "
                                f"(rate(agent_message_delivery_latency_seconds_count{{{sel}}}[$__rate_interval]))"},
               12, 16, unit="reqps"),
    ]
    agent_variable = {"name": "agent", "type": "query", "label": "Agent", "datasource": DATASOURCE,
                      "query": {"query": f'label_values(up{{{sel}, agent_id!=""}}, agent_id)', "refId": "agents"},
                      "definition": f'label_values(up{{{sel}, agent_id!=""}}, agent_id)',
                      "refresh": 2, "includeAll": False, "multi": False, "current": {}, "hide": 0}
    drill_down = [
        _panel(1, "Up", {"{{pod}}": f"up{{{agent_sel}}}"}, 0, 0, 6, "stat"),
        _panel(2, "Health score", {"score": 'monitoring_agent_health_score{agent_id=~"$agent"}'}, 6, 0, 18),
        _panel(3, "CPU %", {"{{pod}}": f"cpu_usage_percent{{{agent_sel}}}"}, 0, 8, unit="percent"),
        _panel(4, "Memory %", {"{{pod}}": f"memory_usage_percent{{{agent_sel}}}"}, 12, 8, unit="percent"),
        _panel(5, "Tasks per second by status",
               {"{{status}}": f"sum by (status) (rate(agent_tasks_total{{{agent_sel}}}[$__rate_interval]))"}, 0, 16,
               unit="ops"),
        _panel(6, "Coordination time p95",
               {"p95": "histogram_quantile(0.95, sum by (le) "
                       f"(rate(agent_coordination_duration_seconds_bucket{{{agent_sel}}}[$__rate_interval])))"},
               12, 16, unit="s"),
        _panel(7, "Utilisation", {"{{pod}}": f"agent_utilization_ratio{{{agent_sel}}}"}, 0, 24, unit="percentunit"),
        _panel(8, "Scrape duration (collector)",
               {"seconds": 'monitoring_agent_last_scrape_duration_seconds{agent_id=~"$agent"}'}, 12, 24, unit="s"),
    ]
    alerts = [
        _panel(1, "Firing alerts by severity",
               {"{{severity}}": f'sum by (severity) (ALERTS{{alertstate="firing", system="{system.name}"}})'},
               0, 0, 24),
        _panel(2, "Firing alerts",
               {"{{alertname}} {{agent_id}}": f'ALERTS{{alertstate="firing", system="{system.name}"}}'},
               0, 8, 24, "table"),
        _panel(3, "Collector alerts active", {"{{severity}}": "monitoring_alerts_active"}, 0, 16, 12),
        _panel(4, "Collector scrape failures / s",
               {"failures": 'sum(rate(monitoring_scrapes_total{result="failure"}[$__rate_interval]))'}, 12, 16, 12),
    ]
    return {"overview": _dashboard(system, "overview", "System overview", overview),
            "agent": _dashboard(system, "agent", "Agent drill-down", drill_down, [agent_variable]),
            "alerts": _dashboard(system, "alerts", "Alerts", alerts)}


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
