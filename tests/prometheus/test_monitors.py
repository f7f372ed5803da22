"""Prometheus operator objects: ServiceMonitors, AlertmanagerConfig routing, and their CRD schemas."""

from __future__ import annotations

from components.kubernetes import monitoring_pod, workload
from components.prometheus.alerting import alertmanager_config
from components.prometheus.monitors import service_monitors
from components.prometheus.rules import prometheus_rule

from ..crd import validate_custom_resource
from ..monitored_system import SYSTEM


def test_service_monitors() -> None:
    agents, service = service_monitors(SYSTEM)
    assert agents["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert agents["spec"]["namespaceSelector"] == {"matchNames": ["agents", "agents-tools"]}
    [endpoint] = agents["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == (
        "metrics", "/metrics", "15s", "5s")
    assert endpoint["relabelings"] == [{"sourceLabels": ["__meta_kubernetes_service_label_agent_id"],
                                        "targetLabel": "agent_id", "action": "replace"}]
    # The agents' Services carry what the selector asks for; the monitoring Service does not match it.
    labels = workload.service(SYSTEM, SYSTEM.agents[0])["metadata"]["labels"]
    assert agents["spec"]["selector"]["matchLabels"].items() <= labels.items() and "agent-id" in labels
    monitoring_labels = monitoring_pod.service(SYSTEM)["metadata"]["labels"]
    assert monitoring_labels["app.kubernetes.io/component"] == "monitoring"
    assert service["spec"]["selector"]["matchLabels"].items() <= monitoring_labels.items()
    assert service["spec"]["endpoints"][0]["port"] == "http"


def test_alert_routing_by_severity_with_secret_references() -> None:
    config = alertmanager_config(SYSTEM)
    routes = config["spec"]["route"]["routes"]
    assert [(r["receiver"], r["matchers"][0]["value"], r["matchers"][1]["value"]) for r in routes] == [
        ("oncall", "critical", "coordination_health"), ("oncall-system-performance", "critical", "system_performance"),
        ("oncall-reasoning-quality", "critical", "reasoning_quality"), ("oncall", "critical", ""),
        ("team", "warning", "coordination_health"), ("team", "warning", "system_performance"),
        ("team", "warning", "")]
    receivers = {r["name"]: r for r in config["spec"]["receivers"]}
    secret = "multi-agent-system-monitoring-credentials"
    assert receivers["oncall"]["pagerdutyConfigs"][0]["routingKey"] == {
        "name": secret, "key": "oncall-pagerduty-routing-key"}
    assert receivers["oncall"]["slackConfigs"][0]["apiURL"] == {"name": secret, "key": "oncall-slack-webhook-url"}
    assert receivers["team"]["emailConfigs"][0]["authPassword"] == {"name": secret, "key": "team-smtp-password"}
    assert config["spec"]["route"]["matchers"] == [{"name": "system", "matchType": "=",
                                                    "value": "multi-agent-system"}]


def test_every_operator_object_matches_its_crd() -> None:
    for obj in [*service_monitors(SYSTEM), prometheus_rule(SYSTEM),
                alertmanager_config(SYSTEM)]:
        validate_custom_resource(obj)
