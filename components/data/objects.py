"""A PostgreSQL store as a CloudNativePG `Cluster` (postgresql.cnpg.io/v1), and the NetworkPolicy that admits
exactly the agents using it. Pure builders.

The Cluster keeps the seed's replicated relational layer: a primary and replicas, `synchronous_replicas`
of them confirming each commit (CloudNativePG's quorum-based synchronous replication). The operator
writes the application user's credentials into the Secret `<name>-app` beside it.
"""

from __future__ import annotations

from typing import Any

from ..config.backbone import store_users
from ..config.labels import object_meta, system_labels
from ..config.messaging import DataStore
from ..config.system import SystemConfig

API_VERSION = "postgresql.cnpg.io/v1"
CLUSTER_LABEL = "cnpg.io/cluster"
INSTANCE_STATUS_PORT = 8000   # the operator talks to each instance manager here
METRICS_PORT = 9187


def cnpg_cluster(system: SystemConfig, store: DataStore) -> dict[str, Any]:
    pg = store.cloudnative_pg
    assert pg is not None and store.namespace is not None
    storage: dict[str, Any] = {"size": pg.storage_size}
    if pg.storage_class is not None:
        storage["storageClass"] = pg.storage_class
    spec: dict[str, Any] = {
        "instances": pg.instances,
        "storage": storage,
        "enableSuperuserAccess": False,
        "bootstrap": {"initdb": {"database": store.database or store.name, "owner": store.database or store.name}},
        "monitoring": {"enablePodMonitor": system.monitoring.enabled and system.monitoring.prometheus_operator},
        "resources": {"requests": {"cpu": pg.cpu, "memory": pg.memory}, "limits": {"cpu": pg.cpu, "memory": pg.memory}},
        # PostgreSQL's own TLS and the NetworkPolicy guard it; an Istio sidecar would block the operator (outside
        # the mesh) and replication under the namespace's default-deny policies.
        "inheritedMetadata": {"labels": {"sidecar.istio.io/inject": "false"}},
    }
    if pg.synchronous_replicas:
        spare = pg.instances - 1 > pg.synchronous_replicas  # a replica may be down without stopping commits
        spec["postgresql"] = {"synchronous": {"method": "any", "number": pg.synchronous_replicas,
                                              "dataDurability": "required" if spare else "preferred"}}
    if pg.image_name is not None:
        spec["imageName"] = pg.image_name
    return {"apiVersion": API_VERSION, "kind": "Cluster",
            "metadata": object_meta(system, store.name, store.namespace, system_labels(system)),
            "spec": spec}


def store_network_policy(system: SystemConfig, store: DataStore) -> dict[str, Any]:
    """Who may reach the Cluster's pods: each other (replication), the operator, Prometheus on the metrics port,
    and on the PostgreSQL port the agents whose config `uses` the store."""
    pg = store.cloudnative_pg
    assert pg is not None and store.namespace is not None
    by_namespace: dict[str, list[str]] = {}
    for agent in store_users(system, store):
        by_namespace.setdefault(system.agent_namespace(agent), []).append(agent.agent_id)
    own = {"podSelector": {"matchLabels": {CLUSTER_LABEL: store.name}}}
    operator = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": pg.operator_namespace}}}
    rules: list[dict[str, Any]] = [
        {"from": [own]},
        {"from": [operator], "ports": [{"protocol": "TCP", "port": INSTANCE_STATUS_PORT},
                                       {"protocol": "TCP", "port": store.port_number}]},
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": system.monitoring.namespace}}}],
         "ports": [{"protocol": "TCP", "port": METRICS_PORT}]},
    ]
    if by_namespace:
        rules.append({"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                                "podSelector": {"matchExpressions": [{"key": "agent-id", "operator": "In",
                                                                      "values": sorted(agents)}]}}
                               for namespace, agents in sorted(by_namespace.items())],
                      "ports": [{"protocol": "TCP", "port": store.port_number}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": object_meta(system, f"{store.name}-clients", store.namespace, system_labels(system)),
            "spec": {"podSelector": {"matchLabels": {CLUSTER_LABEL: store.name}}, "policyTypes": ["Ingress"],
                     "ingress": rules}}
