"""Builders for the monitoring objects (pure; wire format): ServiceMonitors, the Alertmanager
routing and its Secret, and the monitoring pod (ServiceAccount, discovery RBAC, settings
ConfigMap, Deployment, Service).

The monitoring pod is described as an agent of its own, so it is built by the same code as
the agents and gets the same hardening; its settings file is produced by the service's own
settings model, so the pod can't be handed settings it would refuse at start-up.
"""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from monitoring.settings import MonitoringSettings

from . import workload
from .agent_config import AgentConfig
from .alert_rules import agent_namespaces
from .config import SystemConfig
from .labels import service_selector, system_labels

SERVICE_ID = "agent-monitoring"
SERVICE_PORT = 8000
SETTINGS_PATH = "/etc/monitoring/settings.yaml"
TOKEN_KEY = "api-token"


def _metadata(system: SystemConfig, name: str, extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": system.monitoring.namespace,
            "labels": {**system_labels(system), **(extra_labels or {})}}


# --- scraping --------------------------------------------------------------------------------

def service_monitors(system: SystemConfig) -> list[dict[str, Any]]:
    """One ServiceMonitor for every agent Service (keeping `agent_id` as a label), one for the service."""
    monitoring, scrape = system.monitoring, system.monitoring.scrape
    agents = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": _metadata(system, f"{system.name}-agents", monitoring.monitor_labels),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/part-of": system.name},
                         "matchExpressions": [{"key": "agent-id", "operator": "Exists"},
                                              {"key": "app.kubernetes.io/component", "operator": "NotIn",
                                               "values": ["monitoring"]}]},
            "namespaceSelector": {"matchNames": agent_namespaces(system)},
            "endpoints": [{"port": scrape.port, "path": scrape.path, "interval": scrape.interval,
                           "scrapeTimeout": scrape.scrape_timeout,
                           "relabelings": [{"sourceLabels": ["__meta_kubernetes_service_label_agent_id"],
                                            "targetLabel": "agent_id", "action": "replace"}]}],
        },
    }
    service = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": _metadata(system, f"{system.name}-monitoring", monitoring.monitor_labels),
        "spec": {"selector": {"matchLabels": service_selector(service_agent(system))},
                 "namespaceSelector": {"matchNames": [monitoring.namespace]},
                 # The collector's own series carry agent_id; keep it rather than relabel it.
                 "endpoints": [{"port": "http", "path": "/metrics", "interval": scrape.interval,
                                "scrapeTimeout": scrape.scrape_timeout, "honorLabels": True}]},
    }
    return [agents, service]


# --- alert routing ---------------------------------------------------------------------------

def secret_keys(system: SystemConfig) -> dict[str, str]:
    """Pulumi secret config key -> key in the Kubernetes Secret, for every credential the config names."""
    keys: dict[str, str] = {}
    for receiver in system.monitoring.receivers:
        if receiver.slack is not None:
            keys[receiver.slack.webhook_url_secret] = f"{receiver.name}-slack-webhook-url"
        if receiver.email is not None and receiver.email.password_secret:
            keys[receiver.email.password_secret] = f"{receiver.name}-smtp-password"
        if receiver.pagerduty is not None:
            keys[receiver.pagerduty.routing_key_secret] = f"{receiver.name}-pagerduty-routing-key"
    if system.monitoring.service.api_token_secret:
        keys[system.monitoring.service.api_token_secret] = TOKEN_KEY
    return keys


def credentials_secret(system: SystemConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    """The Secret holding the credentials; `values` maps Secret keys to (secret) values."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _metadata(system, f"{system.name}-monitoring-credentials"),
            "type": "Opaque", "stringData": dict(values)}


def alertmanager_config(system: SystemConfig) -> dict[str, Any]:
    """Routes this system's alerts by severity to the configured receivers (credentials by Secret reference)."""
    secret = f"{system.name}-monitoring-credentials"
    keys = secret_keys(system)
    receivers: list[dict[str, Any]] = [{"name": "default"}]  # the root route's catch-all, delivering nowhere
    routes = []
    for receiver in system.monitoring.receivers:
        entry: dict[str, Any] = {"name": receiver.name}
        if receiver.slack is not None:
            entry["slackConfigs"] = [{"apiURL": {"name": secret, "key": keys[receiver.slack.webhook_url_secret]},
                                      "channel": receiver.slack.channel, "sendResolved": True}]
        if receiver.email is not None:
            email: dict[str, Any] = {"to": receiver.email.to, "from": receiver.email.sender,
                                     "smarthost": receiver.email.smarthost, "sendResolved": True}
            if receiver.email.username:
                email["authUsername"] = receiver.email.username
            if receiver.email.password_secret:
                email["authPassword"] = {"name": secret, "key": keys[receiver.email.password_secret]}
            entry["emailConfigs"] = [email]
        if receiver.pagerduty is not None:
            entry["pagerdutyConfigs"] = [{"routingKey": {"name": secret,
                                                         "key": keys[receiver.pagerduty.routing_key_secret]},
                                          "sendResolved": True}]
        receivers.append(entry)
        routes.append({"receiver": receiver.name, "continue": True,
                       "matchers": [{"name": "severity", "matchType": "=~", "value": "|".join(receiver.severities)}]})
    return {"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig",
            "metadata": _metadata(system, f"{system.name}-routing", system.monitoring.monitor_labels),
            "spec": {"route": {"receiver": "default", "groupBy": ["alertname", "namespace", "agent_id"],
                               "groupWait": "30s", "groupInterval": "5m", "repeatInterval": "4h",
                               "matchers": [{"name": "system", "matchType": "=", "value": system.name}],
                               "routes": routes},
                     "receivers": receivers}}


# --- the monitoring pod ----------------------------------------------------------------------

def service_agent(system: SystemConfig) -> AgentConfig:
    """The monitoring service described as an agent: same builders, same secure defaults."""
    pod = system.monitoring.service
    secret_env = ({"MONITORING_API_TOKEN": {"secret": f"{system.name}-monitoring-credentials", "key": TOKEN_KEY}}
                  if pod.api_token_secret else {})
    return AgentConfig.model_validate({
        "agent_id": SERVICE_ID, "role": "monitoring", "image": pod.image, "tag": pod.tag,
        "resources": {"cpu_request": pod.cpu_request, "memory_request": pod.memory_request,
                      "cpu_limit": pod.cpu_limit, "memory_limit": pod.memory_limit},
        "ports": [{"name": "http", "port": SERVICE_PORT}],
        "environment": {"MONITORING_HOST": "0.0.0.0"},
        "secret_environment": secret_env,
        "health_check": {"path": "/health/live", "readiness_path": "/health/ready", "startup_timeout_seconds": 60},
        "scaling": {"autoscaling": False, "initial_replicas": pod.replicas},
        "rollout": {"max_surge": 0, "max_unavailable": 1},  # one collector at a time
        "disruption": {"enabled": False},
        # Discovery reads pods through the Kubernetes API with this pod's service account.
        "service_account": {"automount_token": True},
    })


def _in_monitoring_namespace(system: SystemConfig) -> SystemConfig:
    return system.model_copy(update={"namespace": system.monitoring.namespace, "groups": {}})


def service_settings(system: SystemConfig) -> MonitoringSettings:
    """The service's settings, validated by the service's own model."""
    pod = system.monitoring.service
    return MonitoringSettings.model_validate({
        "host": "0.0.0.0", "port": SERVICE_PORT, "collection_interval": pod.collection_interval,
        "alertmanager": {"url": pod.alertmanager_url},
        "discovery": {"enabled": True, "namespaces": agent_namespaces(system),
                      "label_selector": f"app.kubernetes.io/part-of={system.name},agent-id",
                      "metrics_port": system.monitoring.scrape.port, "metrics_path": system.monitoring.scrape.path},
    })


def settings_config_map(system: SystemConfig) -> dict[str, Any]:
    settings = service_settings(system).model_dump(mode="json", exclude_unset=True)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(system, f"{SERVICE_ID}-settings"),
            "data": {"settings.yaml": yaml.safe_dump(settings, sort_keys=True)}}


def service_account(system: SystemConfig) -> dict[str, Any]:
    return workload.service_account(_in_monitoring_namespace(system), service_agent(system))


def deployment(system: SystemConfig) -> dict[str, Any]:
    """The agents' Deployment builder, plus the settings file mounted read-only."""
    built = workload.deployment(_in_monitoring_namespace(system), service_agent(system))
    pod = built["spec"]["template"]["spec"]
    pod["volumes"].append({"name": "settings", "configMap": {"name": f"{SERVICE_ID}-settings"}})
    container = pod["containers"][0]
    container["args"] = ["--config", SETTINGS_PATH]
    container["volumeMounts"].append({"name": "settings", "mountPath": SETTINGS_PATH.rsplit("/", 1)[0],
                                      "readOnly": True})
    return built


def service(system: SystemConfig) -> dict[str, Any]:
    return workload.service(_in_monitoring_namespace(system), service_agent(system))


def discovery_rbac(system: SystemConfig) -> list[dict[str, Any]]:
    """A Role and RoleBinding per agent namespace: get/list/watch pods and endpoints, nothing else."""
    name = f"{system.name}-monitoring-discovery"
    objects = []
    for namespace in agent_namespaces(system):
        metadata = {"name": name, "namespace": namespace, "labels": system_labels(system)}
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata,
                        "rules": [{"apiGroups": [""], "resources": ["pods", "endpoints"],
                                   "verbs": ["get", "list", "watch"]}]})
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata,
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ID,
                                      "namespace": system.monitoring.namespace}]})
    return objects
