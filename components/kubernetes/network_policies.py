"""Builders of the NetworkPolicies of an agent namespace (pure; wire format).

Default-deny ingress, then per agent: its declared callers (`talks_to`) and the ingress
gateway on its serving ports, the scraper's namespace on its metrics port, and the mesh
control plane. They hold with the mesh disabled too. The monitoring pod, wherever it runs,
has a policy of its own (monitoring_network.py).
"""

from __future__ import annotations

from typing import Any

from ..config.agent import AgentConfig
from ..config.labels import object_meta, service_selector
from ..config.lookups import callers, metrics_port, scraper_namespace
from ..config.system import SystemConfig


def namespace_peer(name: str) -> dict[str, Any]:
    """A NetworkPolicy peer: every pod of the namespace `name`."""
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def network_policies(system: SystemConfig, namespace: str, agents: list[AgentConfig]) -> list[dict[str, Any]]:
    """Default-deny ingress plus, per agent, its declared callers, monitoring (metrics port) and the mesh."""
    mesh = system.mesh
    objects: list[dict[str, Any]] = [{
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": object_meta(system, "default-deny-ingress", namespace),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}]
    for agent in agents:
        serving = [{"port": port.name, "protocol": port.protocol.value}
                   for port in agent.ports if port.name != mesh.metrics_port_name]
        ingress: list[dict[str, Any]] = []
        peers = [{**namespace_peer(system.agent_namespace(caller)),
                  "podSelector": {"matchLabels": service_selector(caller)}} for caller in callers(system, agent)]
        if agent.traffic.entrypoint:
            peers.append(namespace_peer(mesh.ingress_namespace))
        if peers:
            ingress.append({"from": peers, "ports": serving})
        metrics = metrics_port(system, agent)
        if metrics is not None:
            ingress.append({"from": [namespace_peer(scraper_namespace(system))],
                            "ports": [{"port": metrics.name, "protocol": metrics.protocol.value}]})
        if mesh.enabled:
            ingress.append({"from": [namespace_peer(mesh.control_plane_namespace)]})
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": object_meta(system, f"{agent.agent_id}-ingress", namespace),
                        "spec": {"podSelector": {"matchLabels": service_selector(agent)},
                                 "policyTypes": ["Ingress"], "ingress": ingress}})
    return objects
