"""Builders of the NetworkPolicies of an agent namespace (pure; wire format).

Default-deny ingress, then per agent: its declared callers (`talks_to`) and the ingress
gateway on its serving ports, the scraper's namespace on its metrics port, and the mesh
control plane. They hold with the mesh disabled too. Where the monitoring pod shares the
namespace, the agents may reach it (they send it traces).
"""

from __future__ import annotations

from typing import Any

from ..config.agent import AgentConfig
from ..config.labels import app_selector, object_meta, service_selector
from ..config.lookups import agent_namespaces, callers, hosts_monitoring_pod, metrics_port, scraper_namespace
from ..config.monitoring import SERVICE_ID, SERVICE_PORT
from ..config.system import SystemConfig


def _namespace_selector(name: str) -> dict[str, Any]:
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
        peers = [{**_namespace_selector(system.agent_namespace(caller)),
                  "podSelector": {"matchLabels": service_selector(caller)}} for caller in callers(system, agent)]
        if agent.traffic.entrypoint:
            peers.append(_namespace_selector(mesh.ingress_namespace))
        if peers:
            ingress.append({"from": peers, "ports": serving})
        metrics = metrics_port(system, agent)
        if metrics is not None:
            ingress.append({"from": [_namespace_selector(scraper_namespace(system))],
                            "ports": [{"port": metrics.name, "protocol": metrics.protocol.value}]})
        if mesh.enabled:
            ingress.append({"from": [_namespace_selector(mesh.control_plane_namespace)]})
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": object_meta(system, f"{agent.agent_id}-ingress", namespace),
                        "spec": {"podSelector": {"matchLabels": service_selector(agent)},
                                 "policyTypes": ["Ingress"], "ingress": ingress}})
    if hosts_monitoring_pod(system, namespace):
        # The agents send traces (OTLP) to the monitoring pod living under this default deny.
        peers = [_namespace_selector(name) for name in agent_namespaces(system)]
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": object_meta(system, f"{SERVICE_ID}-ingress", namespace),
                        "spec": {"podSelector": {"matchLabels": app_selector(SERVICE_ID)}, "policyTypes": ["Ingress"],
                                 "ingress": [{"from": peers, "ports": [{"port": SERVICE_PORT, "protocol": "TCP"}]}]}})
    return objects
