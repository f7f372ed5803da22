"""Register a builder's object with Pulumi, unchanged: typed pulumi-kubernetes classes for native
kinds, `apiextensions.CustomResource` for the rest (Istio, Prometheus Operator, Flagger)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

_NATIVE_CLASSES: dict[str, type[pulumi.CustomResource]] = {
    "v1/Namespace": k8s.core.v1.Namespace,
    "v1/ResourceQuota": k8s.core.v1.ResourceQuota,
    "v1/LimitRange": k8s.core.v1.LimitRange,
    "v1/ServiceAccount": k8s.core.v1.ServiceAccount,
    "v1/ConfigMap": k8s.core.v1.ConfigMap,
    "v1/Secret": k8s.core.v1.Secret,
    "rbac.authorization.k8s.io/v1/Role": k8s.rbac.v1.Role,
    "rbac.authorization.k8s.io/v1/RoleBinding": k8s.rbac.v1.RoleBinding,
    "v1/Service": k8s.core.v1.Service,
    "apps/v1/Deployment": k8s.apps.v1.Deployment,
    "autoscaling/v2/HorizontalPodAutoscaler": k8s.autoscaling.v2.HorizontalPodAutoscaler,
    "policy/v1/PodDisruptionBudget": k8s.policy.v1.PodDisruptionBudget,
    "networking.k8s.io/v1/NetworkPolicy": k8s.networking.v1.NetworkPolicy,
}


def register_object(resource_name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Register `obj` (wire format, with apiVersion and kind) as a Pulumi resource."""
    cls = _NATIVE_CLASSES.get(f"{obj['apiVersion']}/{obj['kind']}")
    if cls is None:
        fields = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "metadata")}
        return k8s.apiextensions.CustomResource(resource_name, api_version=obj["apiVersion"], kind=obj["kind"],
                                                metadata=obj["metadata"], opts=opts, **fields)
    fields = {_snake_case(key): value for key, value in obj.items() if key not in ("apiVersion", "kind")}
    return cls(resource_name, opts=opts, **fields)


def registered_label(resource: pulumi.CustomResource, obj: dict[str, Any]) -> pulumi.Output[str]:
    """`Kind namespace/name` of a registered object, resolving once Pulumi has registered it."""
    metadata = obj["metadata"]
    label = f"{obj['kind']} {metadata.get('namespace', '-')}/{metadata['name']}"
    return resource.urn.apply(lambda _: label)


def _snake_case(key: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in key)
