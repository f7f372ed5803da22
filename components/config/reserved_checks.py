"""Names the user chooses that belong to someone else: namespaces that are Kubernetes', the mesh's or
the monitoring stack's, namespaces too long to exist, and environment variables and mount paths the
program sets itself. Each is reported at the field to fix, once.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import ConfigProblem
from .generated import TMP_DIR, backbone_env_origins, mount_origins
from .lookups import scraper_namespace
from .system import SystemConfig

MAX_NAMESPACE_LENGTH = 63  # a namespace is a DNS label
KUBERNETES_NAMESPACES = {
    "kube-system": "Kubernetes' own namespace (CoreDNS, kube-proxy, the control plane)",
    "kube-public": "Kubernetes' own namespace (cluster-info, readable by everyone)",
    "kube-node-lease": "Kubernetes' own namespace (the nodes' heartbeats)",
    "default": "Kubernetes' own namespace (the API server's `kubernetes` Service and whatever was installed "
               "without a namespace)",
}
ISTIO_NAMESPACE = "istio-system"
# What goes wrong for whoever already runs in a namespace the agents take over.
_WHY = ("the program gives the agents' namespaces a default-deny ingress NetworkPolicy, a ResourceQuota and a "
        "LimitRange (with create_namespace: false too), which would cut off or starve the pods already there; "
        "give the agents a namespace of their own")


def reserved_namespaces(system: SystemConfig) -> dict[str, str]:
    """Namespaces agents may not use -> whose they are."""
    reserved = dict(KUBERNETES_NAMESPACES)
    reserved.setdefault(ISTIO_NAMESPACE, "the mesh's own namespace (Istio's control plane)")
    mesh = system.mesh
    reserved.setdefault(mesh.control_plane_namespace, "the mesh's own namespace (mesh.control_plane_namespace)")
    reserved.setdefault(mesh.ingress_namespace, "the mesh's own namespace (mesh.ingress_namespace)")
    # Prometheus (and usually Alertmanager and Grafana) runs where it scrapes from; the monitoring pod
    # alone, without the Prometheus Operator, may run next to the agents (the dev stack does).
    if mesh.monitoring_namespace is not None:
        reserved.setdefault(mesh.monitoring_namespace, "the monitoring stack's namespace (mesh.monitoring_namespace)")
    elif system.monitoring.prometheus_operator:
        reserved.setdefault(scraper_namespace(system), "the monitoring stack's namespace (monitoring.namespace, "
                                                       "where the Prometheus Operator objects and Prometheus are)")
    kafka = system.messaging.kafka
    if kafka is not None:
        reserved.setdefault(kafka.namespace, "the Kafka cluster's namespace (messaging.kafka.namespace)")
    for index, store in enumerate(system.data.stores):
        if store.cloudnative_pg is not None:
            reserved.setdefault(store.cloudnative_pg.operator_namespace,
                                f"the CloudNativePG operator's namespace "
                                f"(data.stores[{index}].cloudnative_pg.operator_namespace)")
    return reserved


def _reservation(system: SystemConfig, namespace: str) -> str | None:
    reserved = reserved_namespaces(system)
    if namespace in reserved:
        return reserved[namespace]
    if namespace.startswith("kube-"):
        return "Kubernetes reserves the kube- prefix for its own namespaces"
    return None


def namespace_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    """The agents' namespaces: the main one (when an agent runs there) and every group's."""
    if any(agent.group is None for agent in system.agents):
        reason = _reservation(system, system.namespace)
        if reason is not None:
            yield ConfigProblem("namespace", f"'{system.namespace}' is reserved: {reason}; {_WHY}")
    for name, group in system.groups.items():
        namespace = system.group_namespace(name)
        if group.namespace is None and len(namespace) > MAX_NAMESPACE_LENGTH:
            yield ConfigProblem(f"groups.{name}", f"its namespace '{namespace}' (namespace-group) is {len(namespace)} "
                                                  f"characters, over Kubernetes' {MAX_NAMESPACE_LENGTH}; set "
                                                  f"groups.{name}.namespace to a name of at most "
                                                  f"{MAX_NAMESPACE_LENGTH} characters, or shorten the group's or "
                                                  f"the system's namespace name")
            continue
        reason = _reservation(system, namespace)
        if reason is None:
            continue
        if group.namespace is None:
            yield ConfigProblem(f"groups.{name}", f"its namespace '{namespace}' (namespace-group) is reserved: "
                                                  f"{reason}; {_WHY} (set groups.{name}.namespace)")
        else:
            yield ConfigProblem(f"groups.{name}.namespace", f"'{namespace}' is reserved: {reason}; {_WHY}")


def generated_name_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    """An agent's own variables and files must not take the names the program gives its Kafka and stores.

    (The names every agent gets, and /tmp, are refused in `agent_checks.py`, agent by agent.)
    """
    for index, agent in enumerate(system.agents):
        where = f"agents[{index}]"
        origins = backbone_env_origins(system, agent)
        for field in ("environment", "secret_environment"):
            for name in getattr(agent, field):
                if name in origins:
                    yield ConfigProblem(f"{where}.{field}.{name}", f"is set by the program for {origins[name]}; "
                                                                   f"choose another name")
        mounts = {path: what for path, what in mount_origins(system, agent).items() if path != TMP_DIR}
        for position, file in enumerate(agent.secret_files):
            for directory, what in mounts.items():
                relation = _relation(file.path, directory)
                if relation is not None:
                    yield ConfigProblem(f"{where}.secret_files[{position}].path",
                                        f"'{file.path}' {relation} {directory}, where {what}; mount it elsewhere")
                    break


def _relation(path: str, directory: str) -> str | None:
    """How a mount at `path` collides with one at `directory`, if it does."""
    if path == directory:
        return "is"
    if path.startswith(f"{directory}/"):
        return "is inside"
    if directory.startswith(f"{path}/"):
        return "contains"
    return None
