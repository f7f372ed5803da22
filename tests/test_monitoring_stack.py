"""MonitoringStack: scraping, alert routing and credentials, dashboards, and the monitoring pod."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import pulumi
import pytest
import yaml

from components.kubernetes import monitoring_pod, workload
from components.prometheus import dashboards
from components.prometheus.alerting import alertmanager_config
from components.prometheus.monitors import service_monitors
from components.prometheus.rules import prometheus_rule
from components.config import parse_system_config
from components.render.mock_runtime import RecordingMonitor
from components.monitoring_stack import MonitoringStack, MonitoringStackArgs
from monitoring.settings import load_settings

from .crd import validate_custom_resource

RAW: dict[str, Any] = {
    "namespace": "agents",
    "groups": {"tools": {"quota": None, "limit_range": None}},
    "monitoring": {
        "monitor_labels": {"release": "kube-prometheus-stack"},
        "scrape": {"interval": "15s", "scrape_timeout": "5s"},
        "receivers": [
            {"name": "oncall", "severities": ["critical"], "pagerduty": {"routing_key_secret": "pdKey"},
             "slack": {"channel": "#critical", "webhook_url_secret": "slackUrl"}},
            {"name": "team", "severities": ["warning"],
             "email": {"to": "t@example.com", "sender": "a@example.com", "smarthost": "smtp:587",
                       "username": "alerts", "password_secret": "smtpPassword"}}],
        "service": {"api_token_secret": "apiToken"},
    },
    "agents": [{"agent_id": "planner", "image": "x/planner", "tag": "1"},
               {"agent_id": "tool", "image": "x/tool", "tag": "1", "group": "tools"}],
}
SYSTEM = parse_system_config(RAW)
SECRETS = {"oncall-pagerduty-routing-key": "pd-s3cr3t", "oncall-slack-webhook-url": "https://hooks/s3cr3t",
           "team-smtp-password": "smtp-s3cr3t", "api-token": "token-s3cr3t"}


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
    assert [(r["receiver"], r["matchers"][0]["value"]) for r in routes] == [("oncall", "critical"),
                                                                           ("team", "warning")]
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


def test_monitoring_pod_has_the_agents_hardening() -> None:
    deployment = monitoring_pod.deployment(SYSTEM)
    assert deployment["metadata"]["namespace"] == "monitoring"
    pod = deployment["spec"]["template"]["spec"]
    agent_pod = workload.deployment(SYSTEM, SYSTEM.agents[0])["spec"]["template"]["spec"]
    assert pod["securityContext"] == agent_pod["securityContext"]
    container = pod["containers"][0]
    assert container["securityContext"] == agent_pod["containers"][0]["securityContext"]
    assert container["args"] == ["--config", "/etc/monitoring/settings.yaml"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert {"name": "settings", "mountPath": "/etc/monitoring", "readOnly": True} in container["volumeMounts"]
    token = next(item for item in container["env"] if item["name"] == "MONITORING_API_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "multi-agent-system-monitoring-credentials",
                                                  "key": "api-token", "optional": False}
    assert pod["automountServiceAccountToken"] is True  # discovery reads pods through the API


def test_settings_config_map_is_accepted_by_the_service(tmp_path: Path) -> None:
    text = monitoring_pod.settings_config_map(SYSTEM)["data"]["settings.yaml"]
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    settings = load_settings(path)
    assert settings.host == "0.0.0.0" and settings.port == 8000
    assert settings.discovery.enabled and settings.discovery.namespaces == ["agents", "agents-tools"]
    assert settings.discovery.label_selector == "app.kubernetes.io/part-of=multi-agent-system,agent-id"
    assert str(settings.alertmanager.url) == "http://alertmanager-operated.monitoring.svc:9093/"


def test_discovery_rbac_is_read_only_pods_in_agent_namespaces() -> None:
    objects = monitoring_pod.discovery_rbac(SYSTEM)
    roles = [obj for obj in objects if obj["kind"] == "Role"]
    assert [role["metadata"]["namespace"] for role in roles] == ["agents", "agents-tools"]
    assert all(role["rules"] == [{"apiGroups": [""], "resources": ["pods", "endpoints"],
                                  "verbs": ["get", "list", "watch"]}] for role in roles)
    binding = next(obj for obj in objects if obj["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agent-monitoring", "namespace": "monitoring"}]


def test_dashboards_are_valid_grafana_models() -> None:
    maps = dashboards.dashboard_config_maps(SYSTEM)
    assert len(maps) == 3
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "Multi-agent system"
        [(key, body)] = config_map["data"].items()
        assert key.endswith(".json") and len(body.encode()) < dashboards.MAX_DASHBOARD_BYTES
        model = yaml.safe_load(body)
        assert model["uid"] and model["title"] and model["schemaVersion"] >= 36
        assert model["templating"]["list"][0] == {"name": "datasource", "type": "datasource", "query": "prometheus",
                                                  "label": "Data source", "current": {}, "hide": 0, "refresh": 1}
        assert all(panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for panel in model["panels"])
    agent = yaml.safe_load(next(iter(maps[1]["data"].values())))
    assert [variable["name"] for variable in agent["templating"]["list"]] == ["datasource", "agent"]


def test_dashboard_label_and_folder_are_configurable() -> None:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["dashboards"] = {"label": "grafana_dash", "label_value": "yes", "folder": "Agents"}
    config_map = dashboards.dashboard_config_maps(parse_system_config(raw))[0]
    assert config_map["metadata"]["labels"]["grafana_dash"] == "yes"
    assert config_map["metadata"]["annotations"]["grafana_folder"] == "Agents"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (Debian package prometheus)")
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """Grafana variables are replaced by sample values; promtool then parses each query as a recording rule."""
    exprs = [target["expr"] for model in dashboards.dashboards(SYSTEM).values()
             for panel in model["panels"] for target in panel["targets"]]
    for model in dashboards.dashboards(SYSTEM).values():
        for variable in model["templating"]["list"]:
            if variable["name"] == "agent":  # Grafana's label_values(selector, label) -> group by (label) (selector)
                selector, label = variable["definition"].removeprefix("label_values(")[:-1].rsplit(",", 1)
                exprs.append(f"group by ({label.strip()}) ({selector})")
    rules = [{"record": f"dashboard:query_{index}:check",
              "expr": expr.replace("$__rate_interval", "5m").replace("$agent", "planner")}
             for index, expr in enumerate(exprs)]
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def run_stack(mocks: Callable[..., RecordingMonitor], raw: dict[str, Any]) -> RecordingMonitor:
    monitor = mocks()

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        secrets = {key: pulumi.Output.secret(value) for key, value in SECRETS.items()}
        stack = MonitoringStack("monitoring", MonitoringStackArgs(parse_system_config(raw), secrets))
        return pulumi.Output.all(stack.urn, stack.objects, stack.service_url)

    program()
    return monitor


def test_credentials_stay_secret(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = run_stack(mocks, RAW)
    [secret] = [r for r in monitor.registrations if r.type == "kubernetes:core/v1:Secret"]
    assert secret.secret_inputs == ["stringData"], "the Secret's stringData must reach the engine as a Pulumi secret"
    for registration in monitor.registrations:
        if registration.type == "kubernetes:core/v1:Secret":
            continue
        text = yaml.safe_dump(registration.inputs)
        assert "s3cr3t" not in text, f"{registration.name} holds a credential in plain text"


def test_stack_registers_everything_under_the_component(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = run_stack(mocks, RAW)
    children = [r for r in monitor.registrations if r.parent.endswith("MonitoringStack::monitoring")]
    kinds = sorted({r.type.split(":")[-1] for r in children})
    assert kinds == ["AlertmanagerConfig", "ConfigMap", "Deployment", "PrometheusRule", "Role", "RoleBinding",
                     "Secret", "Service", "ServiceAccount", "ServiceMonitor"]


def test_without_the_operator_only_native_objects(mocks: Callable[..., RecordingMonitor]) -> None:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["prometheus_operator"] = False
    monitor = run_stack(mocks, raw)
    kinds = {r.type.split(":")[-1] for r in monitor.registrations if r.parent.endswith("MonitoringStack::monitoring")}
    assert not kinds & {"AlertmanagerConfig", "PrometheusRule", "ServiceMonitor"}
    assert {"Deployment", "ConfigMap"} <= kinds


def test_missing_secret_config_is_a_clear_error(tmp_path: Path) -> None:
    from .test_render import project_copy, render

    raw = copy.deepcopy(RAW)
    project = project_copy(tmp_path, "nosecret", raw)
    result = render("--stack", "nosecret", "--out", str(tmp_path / "out"), "--project-dir", str(project))
    assert result.returncode == 1
    assert "slackUrl" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
