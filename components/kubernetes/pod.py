"""Builder for an agent's pod template: container, probes, security and placement. Pure.

Shared by every Deployment of an agent (stable, canary, blue and green tracks) and the
monitoring pod, so all of them run with exactly the same hardening.
"""

from __future__ import annotations

import math
from typing import Any

from ..config.agent import AgentConfig, Toleration
from ..config.backbone import backbone_env, backbone_secret_files
from ..config.labels import CONTAINER_NAME, pod_labels, selector_labels
from ..config.lookups import monitoring_service_url
from ..config.monitoring import INGEST_SECRET_SUFFIX, SERVICE_ROLE
from ..config.releases import STABLE_TRACK
from ..config.system import SystemConfig
from ..config.types import Placement, PullPolicy

_ZONE_KEY = "topology.kubernetes.io/zone"
_HOST_KEY = "kubernetes.io/hostname"
_STARTUP_PERIOD_SECONDS = 5


def pod_template(system: SystemConfig, agent: AgentConfig, track: str = STABLE_TRACK) -> dict[str, Any]:
    """The Deployment's `spec.template` for one track of an agent (with the files and environment of the
    Kafka topics and data stores it uses)."""
    backbone = backbone_secret_files(system, agent)
    if backbone:
        agent = agent.model_copy(update={"secret_files": [*agent.secret_files, *backbone]})
    annotations = {"kubectl.kubernetes.io/default-container": CONTAINER_NAME, **agent.pod_annotations}
    spec: dict[str, Any] = {
        "serviceAccountName": agent.agent_id,
        "automountServiceAccountToken": agent.service_account.automount_token,
        # Hundreds of agents' Services would otherwise become env vars in every pod.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": agent.termination_grace_period_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": agent.security.run_as_user,
            "runAsGroup": agent.security.run_as_group,
            "fsGroup": agent.security.fs_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(agent, [*telemetry_env(system, agent),
                                         *({"name": name, "value": value}
                                           for name, value in backbone_env(system, agent).items())])],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": agent.security.tmp_size_limit}},
                    *_secret_volumes(agent)],
    }
    scheduling = agent.scheduling
    if scheduling.node_selector:
        spec["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        spec["tolerations"] = [_toleration(toleration) for toleration in scheduling.tolerations]
    affinity = {**_anti_affinity(agent, track), **(scheduling.affinity or {})}
    region = _region_affinity(system)
    if region:
        affinity["nodeAffinity"] = _within_region(affinity.get("nodeAffinity"), region["nodeAffinity"])
    if affinity:
        spec["affinity"] = affinity
    spread = _topology_spread(agent, track)
    if spread:
        spec["topologySpreadConstraints"] = spread
    if scheduling.priority_class_name:
        spec["priorityClassName"] = scheduling.priority_class_name
    return {"metadata": {"labels": pod_labels(system, agent, track), "annotations": annotations}, "spec": spec}


def telemetry_env(system: SystemConfig, agent: AgentConfig) -> list[dict[str, Any]]:
    """The OpenTelemetry exporter settings of an agent when the monitoring service runs: its endpoint,
    the agent id as service name, and the ingestion credential of the agent's namespace (from the
    Secret MonitoringStack puts there) as the exporter's headers. None for the service itself."""
    if not system.monitoring.enabled or agent.role == SERVICE_ROLE:
        return []
    return [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": monitoring_service_url(system)},
            {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
            {"name": "OTEL_SERVICE_NAME", "value": agent.agent_id},
            {"name": "OTEL_EXPORTER_OTLP_HEADERS", "valueFrom": {"secretKeyRef": {
                "name": f"{system.name}-{INGEST_SECRET_SUFFIX}", "key": "otlp-headers", "optional": False}}}]


def container(agent: AgentConfig, extra_env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The agent's container with env, resources, probes and a locked-down security context."""
    resources = agent.resources
    limits = {"memory": resources.memory_limit, "ephemeral-storage": resources.ephemeral_storage_limit}
    if resources.cpu_limit is not None:
        limits["cpu"] = resources.cpu_limit
    return {
        "name": CONTAINER_NAME,
        "image": agent.image_ref,
        "imagePullPolicy": _pull_policy(agent).value,
        "ports": [{"name": port.name, "containerPort": port.container_port, "protocol": port.protocol.value}
                  for port in agent.ports],
        "env": _env(agent) + list(extra_env or []),
        "resources": {"requests": {"cpu": resources.cpu_request, "memory": resources.memory_request},
                      "limits": limits},
        **_probes(agent),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": agent.security.read_only_root_filesystem,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *_secret_mounts(agent)],
    }


SECRET_FILE_MODE = 0o440  # owner and the pod's fsGroup (the non-root user) may read; nobody may write


def _secret_keys(agent: AgentConfig) -> dict[str, list[str]]:
    """The Secrets the agent reads files from (in order of first use), with just the keys it mounts."""
    keys: dict[str, list[str]] = {}
    for file in agent.secret_files:
        wanted = keys.setdefault(file.secret, [])
        if file.key not in wanted:
            wanted.append(file.key)
    return keys


def _secret_volume_names(agent: AgentConfig) -> dict[str, str]:
    """Secret -> its volume's name, by position: Secret names may be longer than a volume name, or differ
    in dots only."""
    return {secret: f"secret-{index}" for index, secret in enumerate(_secret_keys(agent))}


def _secret_mounts(agent: AgentConfig) -> list[dict[str, Any]]:
    names = _secret_volume_names(agent)
    return [{"name": names[file.secret], "mountPath": file.path, "subPath": file.key, "readOnly": True}
            for file in agent.secret_files]


def _secret_volumes(agent: AgentConfig) -> list[dict[str, Any]]:
    names = _secret_volume_names(agent)
    return [{"name": names[secret],
             "secret": {"secretName": secret, "defaultMode": SECRET_FILE_MODE,
                        "items": [{"key": key, "path": key} for key in wanted]}}
            for secret, wanted in _secret_keys(agent).items()]


def _pull_policy(agent: AgentConfig) -> PullPolicy:
    if agent.image_pull_policy is not None:
        return agent.image_pull_policy
    mutable = agent.digest is None and agent.tag in ("", "latest")
    return PullPolicy.ALWAYS if mutable else PullPolicy.IF_NOT_PRESENT


def _field_ref(path: str) -> dict[str, Any]:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


def _env(agent: AgentConfig) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "AGENT_ID", "value": agent.agent_id},
        {"name": "AGENT_ROLE", "value": agent.role},
        {"name": "NAMESPACE", **_field_ref("metadata.namespace")},
        {"name": "POD_NAME", **_field_ref("metadata.name")},
        {"name": "POD_IP", **_field_ref("status.podIP")},
        {"name": "NODE_NAME", **_field_ref("spec.nodeName")},
    ]
    env += [{"name": name, "value": value} for name, value in agent.environment.items()]
    env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key,
                                                           "optional": ref.optional}}}
            for name, ref in agent.secret_environment.items()]
    return env


def _probes(agent: AgentConfig) -> dict[str, Any]:
    """Startup, liveness and readiness probes. No initialDelaySeconds: the startup probe holds the other two
    until the agent has started, however long that takes."""
    check = agent.health_check
    port = check.port if check.port is not None else agent.ports[0].name

    def probe(path: str, period: int, timeout: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": port}, "periodSeconds": period,
                "timeoutSeconds": timeout, "failureThreshold": failures}

    startup_failures = max(1, math.ceil(check.startup_timeout_seconds / _STARTUP_PERIOD_SECONDS))
    return {
        "startupProbe": probe(check.startup_path or check.path, _STARTUP_PERIOD_SECONDS,
                              check.readiness_timeout_seconds, startup_failures),
        "livenessProbe": probe(check.path, check.period_seconds, check.timeout_seconds, check.failure_threshold),
        "readinessProbe": probe(check.readiness_path or check.path, check.readiness_period_seconds,
                                check.readiness_timeout_seconds, check.readiness_failure_threshold),
    }


def _toleration(toleration: Toleration) -> dict[str, Any]:
    out: dict[str, Any] = {"operator": toleration.operator.value}
    if toleration.key is not None:
        out["key"] = toleration.key
    if toleration.value is not None:
        out["value"] = toleration.value
    if toleration.effect is not None:
        out["effect"] = toleration.effect.value
    if toleration.toleration_seconds is not None:
        out["tolerationSeconds"] = toleration.toleration_seconds
    return out


def _region_affinity(system: SystemConfig) -> dict[str, Any]:
    """In a region stack: nodes of this region and its listed zones only."""
    region = system.region
    if region is None:
        return {}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "topology.kubernetes.io/region", "operator": "In", "values": [region.name]},
                              {"key": _ZONE_KEY, "operator": "In", "values": list(region.zones)}]}]}}}


def _within_region(own: dict[str, Any] | None, region: dict[str, Any]) -> dict[str, Any]:
    """The user's node affinity with the region's added to each of its required terms (ANDed), or the region's."""
    if not own:
        return region
    required_key = "requiredDuringSchedulingIgnoredDuringExecution"
    region_expressions = region[required_key]["nodeSelectorTerms"][0]["matchExpressions"]
    terms = (own.get(required_key) or {}).get("nodeSelectorTerms") or [{}]
    merged = [{**term, "matchExpressions": [*term.get("matchExpressions", []), *region_expressions]} for term in terms]
    return {**own, required_key: {**(own.get(required_key) or {}), "nodeSelectorTerms": merged}}


def _anti_affinity(agent: AgentConfig, track: str) -> dict[str, Any]:
    placement = agent.scheduling.spread_across_nodes
    term = {"labelSelector": {"matchLabels": selector_labels(agent, track)}, "topologyKey": _HOST_KEY}
    if placement is Placement.REQUIRED:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    if placement is Placement.PREFERRED:
        return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term}]}}
    return {}


def _topology_spread(agent: AgentConfig, track: str) -> list[dict[str, Any]]:
    constraints = []
    for key, placement in ((_ZONE_KEY, agent.scheduling.spread_across_zones),
                           (_HOST_KEY, agent.scheduling.spread_across_nodes)):
        if placement is Placement.NONE:
            continue
        constraints.append({
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "DoNotSchedule" if placement is Placement.REQUIRED else "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(agent, track)},
            # Count only the current ReplicaSet's pods, so a rollout isn't skewed by old pods.
            "matchLabelKeys": ["pod-template-hash"],
        })
    return constraints
