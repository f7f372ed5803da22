"""Builders of the ServiceMonitors (pure; wire format): one for every agent Service, keeping
`agent_id` as a label, and one for the monitoring service itself."""

from __future__ import annotations

from typing import Any

from ..config.labels import app_selector
from ..config.lookups import agent_namespaces
from ..config.monitoring import SERVICE_ID, SERVICE_PORT_NAME, SERVICE_ROLE
from ..config.system import SystemConfig
from .meta import operator_meta


def service_monitors(system: SystemConfig) -> list[dict[str, Any]]:
    """One ServiceMonitor for every agent Service (keeping `agent_id` as a label), one for the service."""
    monitoring, scrape = system.monitoring, system.monitoring.scrape
    agents = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": operator_meta(system, f"{system.name}-agents"),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/part-of": system.name},
                         "matchExpressions": [{"key": "agent-id", "operator": "Exists"},
                                              {"key": "app.kubernetes.io/component", "operator": "NotIn",
                                               "values": [SERVICE_ROLE]}]},
            "namespaceSelector": {"matchNames": agent_namespaces(system)},
            "endpoints": [{"port": scrape.port, "path": scrape.path, "interval": scrape.interval,
                           "scrapeTimeout": scrape.scrape_timeout,
                           "relabelings": [{"sourceLabels": ["__meta_kubernetes_service_label_agent_id"],
                                            "targetLabel": "agent_id", "action": "replace"}]}],
        },
    }
    service = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": operator_meta(system, f"{system.name}-monitoring"),
        "spec": {"selector": {"matchLabels": app_selector(SERVICE_ID)},
                 "namespaceSelector": {"matchNames": [monitoring.namespace]},
                 # The collector's own series carry agent_id; keep it rather than relabel it.
                 "endpoints": [{"port": SERVICE_PORT_NAME, "path": "/metrics", "interval": scrape.interval,
                                "scrapeTimeout": scrape.scrape_timeout, "honorLabels": True}]},
    }
    return [agents, service]
