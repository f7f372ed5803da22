"""Builders for one agent's workload objects: ServiceAccount, Deployment, Service, HPA, PDB.

Pure functions of the typed config returning objects exactly as the Kubernetes API
receives them (camelCase keys, ints as ints). `AgentDeployment` registers them, the
offline render writes them, and the tests validate them against Kubernetes' schemas.
"""

from __future__ import annotations

from typing import Any

from ..config.agent import AgentConfig
from ..config.labels import agent_labels, object_meta, selector_labels, service_selector
from ..config.lookups import hpa_behavior
from ..config.releases import STABLE_TRACK, serving_track
from ..config.system import SystemConfig
from .pod import CONTAINER_NAME, pod_template
from .scanner import skip_annotations


def _metadata(system: SystemConfig, agent: AgentConfig, name: str | None = None) -> dict[str, Any]:
    return object_meta(system, name or agent.agent_id, system.agent_namespace(agent), agent_labels(system, agent))


def deployment_name(agent: AgentConfig, track: str = STABLE_TRACK) -> str:
    """Stable track keeps the bare agent id, so Service DNS and dashboards stay obvious."""
    return agent.agent_id if track == STABLE_TRACK else f"{agent.agent_id}-{track}"


def service_account(system: SystemConfig, agent: AgentConfig) -> dict[str, Any]:
    """The agent's own identity (its mesh identity too); no API token unless asked for."""
    metadata = _metadata(system, agent)
    if agent.service_account.annotations:
        metadata["annotations"] = dict(agent.service_account.annotations)
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata,
            "automountServiceAccountToken": agent.service_account.automount_token}


def deployment(system: SystemConfig, agent: AgentConfig, track: str = STABLE_TRACK,
               replicas: int | None = None) -> dict[str, Any]:
    """The agent's Deployment for one track (`agent` as that track runs it, see releases.tracks).

    `spec.replicas` is the initial count; when an HPA manages the agent the component tells
    Pulumi to ignore later changes to it, so `pulumi up` never resets the HPA's choice.
    """
    rollout = agent.rollout
    template = pod_template(system, agent, track)
    metadata = _metadata(system, agent, deployment_name(agent, track))
    skips = skip_annotations(system, agent, template["spec"])
    if skips:
        metadata["annotations"] = {**metadata.get("annotations", {}), **skips}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": agent.scaling.initial_replicas if replicas is None else replicas,
            "selector": {"matchLabels": selector_labels(agent, track)},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": rollout.max_surge, "maxUnavailable": rollout.max_unavailable}},
            "minReadySeconds": rollout.min_ready_seconds,
            "revisionHistoryLimit": rollout.revision_history_limit,
            "progressDeadlineSeconds": 600,
            "template": template,
        },
    }


def service(system: SystemConfig, agent: AgentConfig) -> dict[str, Any]:
    """ClusterIP (by default) Service in front of every ready pod of the agent."""
    selector = service_selector(agent)
    active = serving_track(agent)
    if active:  # blue-green: only the active colour, so the switch works without a mesh too
        selector["track"] = active
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _metadata(system, agent),
        "spec": {
            "type": agent.service_type.value,
            "selector": selector,
            "ports": [{"name": port.name, "port": port.port, "targetPort": port.name,
                       "protocol": port.protocol.value} for port in agent.ports],
        },
    }


def horizontal_pod_autoscaler(system: SystemConfig, agent: AgentConfig,
                              track: str = STABLE_TRACK) -> dict[str, Any]:
    """autoscaling/v2 HPA on CPU, memory and custom per-pod metrics, with behavior policies.

    CPU and memory are the agent container's (ContainerResource) when the mesh injects a sidecar,
    so the proxy's usage neither triggers nor hides a scale-out.
    """
    scaling = agent.scaling
    metrics: list[dict[str, Any]] = []
    for resource, target in (("cpu", scaling.target_cpu), ("memory", scaling.target_memory)):
        if target is None:
            continue
        utilisation = {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}}
        if system.mesh.enabled:
            # A sidecar shares the pod: measure the agent's own container, not the pod's sum.
            metrics.append({"type": "ContainerResource", "containerResource": {**utilisation,
                                                                                "container": CONTAINER_NAME}})
        else:
            metrics.append({"type": "Resource", "resource": utilisation})
    for metric in scaling.custom_metrics:
        metrics.append({"type": "Pods", "pods": {
            "metric": {"name": metric.name},
            "target": {"type": "AverageValue", "averageValue": metric.target_average_value}}})
    name = deployment_name(agent, track)
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(system, agent, name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
            "behavior": hpa_behavior(agent),
        },
    }


def pod_disruption_budget(system: SystemConfig, agent: AgentConfig, track: str = STABLE_TRACK) -> dict[str, Any]:
    """policy/v1 PDB; unhealthy pods may always be evicted so a crash-looping agent can't block drains."""
    disruption = agent.disruption
    spec: dict[str, Any] = {"selector": {"matchLabels": selector_labels(agent, track)},
                            "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    if disruption.min_available is not None:
        spec["minAvailable"] = disruption.min_available
    else:
        spec["maxUnavailable"] = disruption.max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": _metadata(system, agent, deployment_name(agent, track)), "spec": spec}
