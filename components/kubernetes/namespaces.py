"""Builders for namespaces and their guard rails (ResourceQuota, LimitRange). Pure functions."""

from __future__ import annotations

from typing import Any

from ..config.labels import object_meta, system_labels
from ..config.system import LimitRangeConfig, ResourceQuotaConfig, SystemConfig


def namespace(system: SystemConfig, name: str, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Namespace that enforces the configured Pod Security Standard."""
    level = system.pod_security.value
    labels = {**system_labels(system), **(extra_labels or {}),
              "kubernetes.io/metadata.name": name,
              "pod-security.kubernetes.io/enforce": level,
              "pod-security.kubernetes.io/enforce-version": "latest",
              "pod-security.kubernetes.io/warn": level,
              "pod-security.kubernetes.io/audit": level}
    if system.mesh.enabled:
        labels["istio-injection"] = "enabled"
        if system.region is not None and system.region.network is not None:
            labels["topology.istio.io/network"] = system.region.network  # a multi-network mesh's network
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": object_meta(system, name, labels=labels)}


def resource_quota(system: SystemConfig, namespace_name: str, quota: ResourceQuotaConfig) -> dict[str, Any]:
    """A ResourceQuota named `agent-quota` capping the namespace's total requests and limits."""
    hard = {"requests.cpu": quota.requests_cpu, "requests.memory": quota.requests_memory,
            "limits.cpu": quota.limits_cpu, "limits.memory": quota.limits_memory,
            "pods": None if quota.pods is None else str(quota.pods)}
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": object_meta(system, "agent-quota", namespace_name),
            "spec": {"hard": {key: value for key, value in hard.items() if value is not None}}}


def limit_range(system: SystemConfig, namespace_name: str, limits: LimitRangeConfig) -> dict[str, Any]:
    """A LimitRange named `agent-limits` giving containers that set nothing sane defaults."""
    container: dict[str, Any] = {
        "type": "Container",
        "default": {"cpu": limits.default_cpu_limit, "memory": limits.default_memory_limit},
        "defaultRequest": {"cpu": limits.default_cpu_request, "memory": limits.default_memory_request},
    }
    maximum = {key: value for key, value in (("cpu", limits.max_cpu), ("memory", limits.max_memory)) if value}
    if maximum:
        container["max"] = maximum
    return {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": object_meta(system, "agent-limits", namespace_name),
            "spec": {"limits": [container]}}
