"""Builders of the monitoring pod (pure; wire format): its ServiceAccount, settings ConfigMap,
Deployment and Service, the discovery RBAC in every agent namespace, the credentials Secret and the
ingestion Secrets, and the inventory of every credential: which Secret and key holds it, how its
value is made, and where a secret store holds it.

The monitoring pod is described as an agent of its own, so it is built by the same code as
the agents and gets the same hardening; its settings file is produced by the service's own
settings model, so the pod can't be handed settings it would refuse at start-up.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from monitoring.credentials import PROMETHEUS_ROLE, PROMETHEUS_SCOPE, ingest_token
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


def remote_write_secret_name(system: SystemConfig) -> str:
    """The Secret holding Prometheus' remote-write token, in the monitoring namespace."""
    return f"{system.name}-monitoring-remote-write"


def remote_write_secret(system: SystemConfig, key: Any) -> dict[str, Any]:
    """Prometheus' credential for remote-writing to the service (source: remote_write), in the monitoring
    namespace: the ingestion token of the scope every namespace's series may come under."""
    token = (key.apply(lambda value: ingest_token(value, PROMETHEUS_SCOPE)) if hasattr(key, "apply")
             else ingest_token(key, PROMETHEUS_SCOPE))
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": object_meta(system, remote_write_secret_name(system), system.monitoring.namespace),
            "type": "Opaque", "stringData": {"token": token}}


# With a secret store, an ingestion Secret is made from the one token the store holds.
INGEST_TEMPLATE = {"token": "{{ .token }}", "otlp-headers": "Authorization=Bearer%20{{ .token }}"}
_GENERATE = "openssl rand -hex 24"


@dataclass(frozen=True)
class StoredSecret:
    """A Secret filled from the secret store: its keys, each from a key in the store, and its template."""

    namespace: str
    name: str
    remote_keys: dict[str, str]
    template: dict[str, str] | None = None


def remote_key(system: SystemConfig, kind: str, name: str) -> str:
    """A credential's key in the secret store: `<prefix><kind>-<name>`, the kinds (credentials, ingest-ns,
    ingest-role) apart so that no name of one can make the key of another."""
    prefix = system.monitoring.credentials.remote_key_prefix
    return f"{prefix if prefix is not None else f'{system.name}-monitoring-'}{kind}-{name}"


def stored_secrets(system: SystemConfig) -> list[StoredSecret]:
    """The Secrets the External Secrets Operator fills from the store: the credentials, each agent namespace's
    ingestion token, and Prometheus' (source: remote_write)."""
    monitoring = system.monitoring
    plan = [StoredSecret(monitoring.namespace, credentials_secret_name(system),
                         {key: remote_key(system, "credentials", key) for key in monitoring.credential_keys()})]
    plan += [StoredSecret(namespace, ingest_secret_name(system), {"token": remote_key(system, "ingest-ns", namespace)},
                          INGEST_TEMPLATE) for namespace in agent_namespaces(system)]
    if monitoring.service.source == "remote_write":
        plan.append(StoredSecret(monitoring.namespace, remote_write_secret_name(system),
                                 {"token": remote_key(system, "ingest-role", PROMETHEUS_ROLE)}))
    return plan


def credential_inventory(system: SystemConfig) -> list[dict[str, str]]:
    """Every credential the system needs, one entry per Secret key: `namespace`, `secret`, `key`, `value` (how it
    is made) and, with a secret store, `remote_key` (where the store must hold it). Without a store `pulumi up`
    writes them all; whoever applies the offline render instead creates them."""
    monitoring = system.monitoring
    stored = monitoring.credentials.secret_store is not None
    generated = set(monitoring.generated_credentials())
    named = {secret_key: (path, config_key) for path, config_key, secret_key in monitoring.secret_references()}
    entries = []
    for key in monitoring.credential_keys():
        if key in named:
            path, config_key = named[key]
            value = (f"what {path} ({config_key}) names" if stored else f"the Pulumi secret {config_key} ({path})")
        else:
            value = f"{_GENERATE}" + ("" if stored or key not in generated else " (pulumi up: RandomPassword)")
        entries.append({"namespace": monitoring.namespace, "secret": credentials_secret_name(system), "key": key,
                        "value": value})
    derive = "MONITORING_AUTH__INGEST_KEY=<ingest-key> python -m monitoring.credentials"
    for namespace in agent_namespaces(system):
        token = f"`{derive} {namespace}` (mi2.ns.{namespace}.<HMAC-SHA256(ingest-key, 'ns:{namespace}')>)"
        entries.append({"namespace": namespace, "secret": ingest_secret_name(system), "key": "token", "value": token})
        if not stored:  # the store's ExternalSecret makes it from the token
            entries.append({"namespace": namespace, "secret": ingest_secret_name(system), "key": "otlp-headers",
                            "value": "Authorization=Bearer%20<that token>"})
    if monitoring.service.source == "remote_write":
        entries.append({"namespace": monitoring.namespace, "secret": remote_write_secret_name(system), "key": "token",
                        "value": f"`{derive} --role {PROMETHEUS_ROLE}`"})
    if stored:
        remote = {(secret.namespace, secret.name, key): remote for secret in stored_secrets(system)
                  for key, remote in secret.remote_keys.items()}
        for entry in entries:
            entry["remote_key"] = remote[(entry["namespace"], entry["secret"], entry["key"])]
    return entries


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
