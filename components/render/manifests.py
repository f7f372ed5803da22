"""Turn recorded registrations into Kubernetes manifests: wire-format cleanup, apply order, YAML.

The engine's wire format (protobuf Struct) carries every number as a float; Kubernetes
wants integers where the schema says integer, and no field of ours is a fractional
number, so integral floats become ints again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import yaml

from .mock_runtime import Registration

# Apply order: what others live in or refer to comes first (as `kubectl apply` users expect).
_CLUSTER_FIRST = ("Namespace", "CustomResourceDefinition", "PriorityClass", "ClusterRole", "ClusterRoleBinding")
_NAMESPACED_ORDER = ("ResourceQuota", "LimitRange", "ServiceAccount", "Secret", "ConfigMap", "Role", "RoleBinding",
                     "Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy")
_CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "PriorityClass", "ClusterRole", "ClusterRoleBinding",
                   "StorageClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}


def _kubernetes(registrations: Iterable[Registration]) -> list[Registration]:
    return [registration for registration in registrations
            if registration.custom and registration.type.startswith("kubernetes:") and "kind" in registration.inputs]


def kubernetes_objects(registrations: Iterable[Registration]) -> list[dict[str, Any]]:
    """The Kubernetes objects among the registrations, cleaned up and in apply order; Secrets left out (see
    withheld_secrets)."""
    objects = [from_wire(registration.inputs) for registration in _kubernetes(registrations)
               if registration.inputs["kind"] != "Secret"]
    return sorted(objects, key=_apply_order)


def withheld_secrets(registrations: Iterable[Registration]) -> list[str]:
    """`namespace/name` of the Secrets the program registers, which the render never writes: their data are
    credentials that exist only at `pulumi up` (generated there, derived from those, or decrypted from the
    stack), so anything written in their place would be a value someone could use or a lie."""
    return sorted(f"{registration.inputs['metadata'].get('namespace', '-')}/{registration.inputs['metadata']['name']}"
                  for registration in _kubernetes(registrations) if registration.inputs["kind"] == "Secret")


# Pulumi's wire envelope for a secret value: {SECRET_SIG_KEY: SECRET_SIG, "value": ...}.
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def from_wire(value: Any) -> Any:
    """Undo the wire format: integral floats become ints again, secret envelopes are opened."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict) and value.get(_SECRET_SIG_KEY) == _SECRET_SIG:
        return from_wire(value.get("value"))
    if isinstance(value, dict):
        return {key: from_wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    return value


def is_cluster_scoped(obj: dict[str, Any]) -> bool:
    return obj["kind"] in _CLUSTER_SCOPED


def _apply_order(obj: dict[str, Any]) -> tuple[int, int, str, str, str]:
    kind = obj["kind"]
    metadata = obj.get("metadata", {})
    if kind in _CLUSTER_FIRST:
        rank = (0, _CLUSTER_FIRST.index(kind))
    elif is_cluster_scoped(obj):
        rank = (1, 0)
    elif kind in _NAMESPACED_ORDER:
        rank = (2, _NAMESPACED_ORDER.index(kind))
    else:
        rank = (3, 0)  # custom resources (Istio, Prometheus Operator) after the workloads
    return (*rank, metadata.get("namespace", ""), kind, metadata.get("name", ""))


def _ordered(obj: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first; everything below sorted, so renders diff cleanly."""
    head = [key for key in ("apiVersion", "kind", "metadata") if key in obj]
    rest = sorted(key for key in obj if key not in head)
    return {key: _sorted(obj[key]) for key in (*head, *rest)}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def to_yaml(obj: dict[str, Any]) -> str:
    """One object as a YAML document."""
    return yaml.safe_dump(_ordered(obj), sort_keys=False, default_flow_style=False, width=120)


def file_name(obj: dict[str, Any], position: int) -> str:
    """`03-deployment-agents-dev-coordinator.yaml`: apply order, kind, namespace, name."""
    metadata = obj.get("metadata", {})
    parts = [f"{position:03d}", obj["kind"].lower(), metadata.get("namespace", ""), metadata.get("name", "")]
    return "-".join(part for part in parts if part) + ".yaml"


def write_manifests(objects: list[dict[str, Any]], directory: Path) -> list[Path]:
    """Write one file per object plus `all.yaml` into `directory` (which must exist)."""
    written = []
    documents = []
    for position, obj in enumerate(objects, start=1):
        text = to_yaml(obj)
        path = directory / file_name(obj, position)
        path.write_text(text)
        written.append(path)
        documents.append(text)
    (directory / "all.yaml").write_text("---\n".join(documents))
    return written


def preview_table(objects: list[dict[str, Any]]) -> str:
    """A `pulumi preview`-style listing: one row per object, then the count per kind."""
    rows = [(obj["kind"], obj.get("metadata", {}).get("namespace", "-"), obj.get("metadata", {}).get("name", ""))
            for obj in objects]
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(("KIND", "NAMESPACE"))]
    lines = [f"{'KIND':<{widths[0]}}  {'NAMESPACE':<{widths[1]}}  NAME"]
    lines += [f"{kind:<{widths[0]}}  {namespace:<{widths[1]}}  {name}" for kind, namespace, name in rows]
    counts = Counter(kind for kind, _, _ in rows)
    lines.append("")
    lines.append(f"{len(rows)} objects: " + ", ".join(f"{count} {kind}" for kind, count in counts.items()))
    return "\n".join(lines)
