"""The rules of the policy pack, as plain functions over Kubernetes objects (the props Pulumi gives a
policy are the object's fields): each returns the violations it finds, one sentence each.

They hold for anything in a stack, not only what this program builds: someone editing the program or
adding resources by hand meets them at `pulumi preview` / `pulumi up --policy-pack policy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
ALLOWED_CAPABILITIES = {"NET_BIND_SERVICE"}
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload object, or None for other kinds."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec")
    if kind in WORKLOADS:
        return (spec.get("template") or {}).get("spec")
    return None


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(field) or []


def _name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{obj.get('kind')} {metadata.get('namespace', 'default')}/{metadata.get('name', '?')}"


def privileged(obj: dict[str, Any]) -> list[str]:
    """No privileged containers, privilege escalation, extra capabilities or host namespaces."""
    pod = pod_spec(obj)
    if pod is None:
        return []
    found = [f"{_name(obj)} uses the host's {field[4:]} namespace ({field}: true); remove it"
             for field in HOST_NAMESPACES if pod.get(field)]
    for container in _containers(pod):
        context = container.get("securityContext") or {}
        where = f"{_name(obj)} container {container.get('name')!r}"
        if context.get("privileged"):
            found.append(f"{where} is privileged; remove securityContext.privileged")
        if context.get("allowPrivilegeEscalation", True) is not False:
            found.append(f"{where} may gain privileges; set securityContext.allowPrivilegeEscalation: false")
        added = set((context.get("capabilities") or {}).get("add") or []) - ALLOWED_CAPABILITIES
        if added:
            found.append(f"{where} adds capabilities {sorted(added)}; drop them (only NET_BIND_SERVICE is allowed)")
    return found


def unpinned_images(obj: dict[str, Any], production: bool) -> list[str]:
    """In production, every image is pinned by digest (`image@sha256:...`)."""
    pod = pod_spec(obj)
    if pod is None or not production:
        return []
    return [f"{_name(obj)} container {container.get('name')!r} runs {container.get('image')!r}, not pinned by "
            f"digest; use image@sha256:<digest>" for container in _containers(pod)
            if "@sha256:" not in str(container.get("image", ""))]


def missing_limits(obj: dict[str, Any]) -> list[str]:
    """Every container requests CPU and memory and has a memory limit (a CPU limit is left optional:
    it throttles a pod with idle cores around, the request already reserves its share)."""
    pod = pod_spec(obj)
    if pod is None:
        return []
    found = []
    for container in _containers(pod):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        missing = [f"requests.{name}" for name in ("cpu", "memory") if name not in requests]
        missing += ["limits.memory"] if "memory" not in limits else []
        if missing:
            found.append(f"{_name(obj)} container {container.get('name')!r} sets no {', '.join(missing)}")
    return found


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    expressions = selector.get("matchExpressions") or []
    if expressions:
        return False  # not evaluated here: a policy relying on them does not count as isolating
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items())


def unisolated_workloads(objects: Iterable[dict[str, Any]]) -> list[str]:
    """Every workload is isolated for ingress: some NetworkPolicy of its namespace with policyType Ingress
    selects its pods (a namespace-wide default deny, or one for the workload)."""
    objects = list(objects)
    isolating = [obj for obj in objects if obj.get("kind") == "NetworkPolicy"
                 and "Ingress" in ((obj.get("spec") or {}).get("policyTypes") or ["Ingress"])]
    found = []
    for obj in objects:
        pod = pod_spec(obj)
        if pod is None:
            continue
        namespace = (obj.get("metadata") or {}).get("namespace", "default")
        template = obj if obj.get("kind") == "Pod" else (obj.get("spec") or {}).get("template") or {}
        if obj.get("kind") == "CronJob":
            template = (((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not any((policy.get("metadata") or {}).get("namespace", "default") == namespace
                   and _selects((policy.get("spec") or {}).get("podSelector") or {}, labels) for policy in isolating):
            found.append(f"{_name(obj)} is not selected by any ingress NetworkPolicy in {namespace}; add a default "
                         f"deny (podSelector: {{}}, policyTypes: [Ingress]) and allow what it needs")
    return found
