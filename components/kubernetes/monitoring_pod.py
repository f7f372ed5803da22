"""Builders of the monitoring pod (pure; wire format): its ServiceAccount, settings ConfigMap,
Deployment and Service, the discovery RBAC in every agent namespace, and the credentials Secret.

The monitoring pod is described as an agent of its own, so it is built by the same code as
the agents and gets the same hardening; its settings file is produced by the service's own
settings model, so the pod can't be handed settings it would refuse at start-up.
"""

from __future__ import annotations

import secrets
from typing import Any, Mapping

import yaml

from monitoring.credentials import PROMETHEUS_SCOPE, ingest_token
from monitoring.settings import MonitoringSettings

from ..config.agent import AgentConfig
from ..config.labels import object_meta
from ..config.lookups import agent_namespaces, credentials_secret_name
from ..config.monitoring import (INGEST_SECRET_SUFFIX, RELAY_AUTHORIZATION_KEY, SERVICE_CREDENTIALS, SERVICE_ID,
                                 SERVICE_PORT, SERVICE_PORT_NAME, SERVICE_ROLE, STATE_CONFIG_MAP, TRACE_BUDGET_SHARE)
from ..config.quantities import memory_bytes
from ..config.system import SystemConfig
from . import workload

SETTINGS_PATH = "/etc/monitoring/settings.yaml"
CREDENTIALS_DIR = "/var/run/secrets/monitoring"  # the credentials Secret's keys, as files
RELAY_QUEUE_SHARE = 16  # the relay's queue may hold a sixteenth of the pod's memory limit


def _metadata(system: SystemConfig, name: str) -> dict[str, Any]:
    return object_meta(system, name, system.monitoring.namespace)


def credentials_secret(system: SystemConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    """The Secret holding the credentials; `values` maps Secret keys to (secret) values."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _metadata(system, credentials_secret_name(system)),
            "type": "Opaque", "stringData": dict(values)}


def ingest_secret_name(system: SystemConfig) -> str:
    """The Secret holding the ingestion token in each agent namespace."""
    return f"{system.name}-{INGEST_SECRET_SUFFIX}"


def ingest_secret(system: SystemConfig, namespace: str, key: Any) -> dict[str, Any]:
    """An agent namespace's ingestion credential, derived from the service's ingestion key (a string or
    a Pulumi Output): the token (for the span API) and the OTLP exporter's header setting
    (`OTEL_EXPORTER_OTLP_HEADERS`). Other namespaces' tokens can't be derived from it."""
    def derive(template: str) -> Any:
        render = (lambda value: template.format(ingest_token(value, namespace)))  # noqa: E731
        return key.apply(render) if hasattr(key, "apply") else render(key)

    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": object_meta(system, ingest_secret_name(system), namespace), "type": "Opaque",
            "stringData": {"token": derive("{}"), "otlp-headers": derive("Authorization=Bearer%20{}")}}


def remote_write_secret(system: SystemConfig, key: Any) -> dict[str, Any]:
    """Prometheus' credential for remote-writing to the service (source: remote_write), in the monitoring
    namespace: the ingestion token of the scope every namespace's series may come under."""
    token = (key.apply(lambda value: ingest_token(value, PROMETHEUS_SCOPE)) if hasattr(key, "apply")
             else ingest_token(key, PROMETHEUS_SCOPE))
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": object_meta(system, f"{system.name}-monitoring-remote-write", system.monitoring.namespace),
            "type": "Opaque", "stringData": {"token": token}}


def service_agent(system: SystemConfig) -> AgentConfig:
    """The monitoring service described as an agent: same builders, same secure defaults."""
    pod = system.monitoring.service
    secret = credentials_secret_name(system)
    # Every scope has its credential (configured or generated): the pod listens beyond loopback. They are
    # files of the credentials Secret (just these keys; the alerting ones are Alertmanager's).
    keys = list(SERVICE_CREDENTIALS)
    if pod.trace_relay is not None and pod.trace_relay.authorization_secret:
        keys.append(RELAY_AUTHORIZATION_KEY)
    secret_files = [{"secret": secret, "key": key, "path": f"{CREDENTIALS_DIR}/{key}"} for key in keys]
    return AgentConfig.model_validate({
        "agent_id": SERVICE_ID, "role": SERVICE_ROLE, "image": pod.image, "tag": pod.tag, "digest": pod.digest,
        "resources": {"cpu_request": pod.cpu_request, "memory_request": pod.memory_request,
                      "cpu_limit": pod.cpu_limit, "memory_limit": pod.memory_limit},
        "ports": [{"name": SERVICE_PORT_NAME, "port": SERVICE_PORT}],
        "environment": {"MONITORING_HOST": "0.0.0.0"},
        "secret_files": secret_files,
        "health_check": {"path": "/health/live", "readiness_path": "/health/ready", "startup_timeout_seconds": 60},
        "scaling": {"autoscaling": False, "initial_replicas": pod.replicas},
        "rollout": {"max_surge": 0, "max_unavailable": 1},  # one collector at a time
        "disruption": {"enabled": False},
        # Discovery reads pods through the Kubernetes API with this pod's service account.
        "service_account": {"automount_token": True,
                            "automount_reason": "discovery watches the agent pods and the service keeps its API "
                                                "state in one ConfigMap through the Kubernetes API (Roles "
                                                "limited to that)"},
    })


def _in_monitoring_namespace(system: SystemConfig) -> SystemConfig:
    return system.model_copy(update={"namespace": system.monitoring.namespace, "groups": {}})


def service_settings(system: SystemConfig) -> MonitoringSettings:
    """The service's settings, validated by the service's own model."""
    pod = system.monitoring.service
    memory = int(memory_bytes(pod.memory_limit))
    tracing: dict[str, Any] = {"max_bytes": memory // TRACE_BUDGET_SHARE}
    if pod.trace_relay is not None:
        tracing["relay"] = {"endpoint": pod.trace_relay.endpoint, "headers": pod.trace_relay.headers,
                            "signals": pod.trace_relay.signals,
                            "max_queue_bytes": max(2**16, memory // RELAY_QUEUE_SHARE)}
    # The credentials come from the credentials Secret's files; these throw-away stand-ins (strong, as the
    # service requires) let the service's own model check the rest. They are left out of the settings file.
    stand_ins = {name: secrets.token_hex(24) for name in ("admin_token", "read_token", "ingest_key")}
    return MonitoringSettings.model_validate({
        "host": "0.0.0.0", "port": SERVICE_PORT, "collection_interval": pod.collection_interval,
        "alertmanager": {"url": pod.alertmanager_url}, "tracing": tracing,
        "persistence": {"config_map": STATE_CONFIG_MAP}, "auth": stand_ins, "credentials_dir": CREDENTIALS_DIR,
        "source": pod.source,
        "discovery": {"enabled": pod.source == "scrape", "namespaces": agent_namespaces(system),
                      "label_selector": f"app.kubernetes.io/part-of={system.name},agent-id",
                      "metrics_port": system.monitoring.scrape.port, "metrics_path": system.monitoring.scrape.path},
    })


def settings_config_map(system: SystemConfig) -> dict[str, Any]:
    settings = service_settings(system).model_dump(mode="json", exclude_unset=True, exclude={"auth"})
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


def state_rbac(system: SystemConfig) -> list[dict[str, Any]]:
    """A Role and RoleBinding in the monitoring namespace: the service keeps its API state in one ConfigMap
    (get/update by name; create can't be limited to a name in Kubernetes RBAC)."""
    name = f"{system.name}-monitoring-state"
    metadata = object_meta(system, name, system.monitoring.namespace)
    return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata,
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update"],
                        "resourceNames": [STATE_CONFIG_MAP, f"{STATE_CONFIG_MAP}-corrupt"]},
                       {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata,
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
             "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ID, "namespace": system.monitoring.namespace}]}]


def discovery_rbac(system: SystemConfig) -> list[dict[str, Any]]:
    """A Role and RoleBinding per agent namespace: get/list/watch pods and endpoints, nothing else."""
    name = f"{system.name}-monitoring-discovery"
    objects = []
    for namespace in agent_namespaces(system):
        metadata = object_meta(system, name, namespace)
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata,
                        "rules": [{"apiGroups": [""], "resources": ["pods", "endpoints"],
                                   "verbs": ["get", "list", "watch"]}]})
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata,
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ID,
                                      "namespace": system.monitoring.namespace}]})
    return objects
