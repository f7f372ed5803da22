"""Builders of the zero-trust objects of an agent namespace (pure; wire format).

PeerAuthentication (mTLS), AuthorizationPolicy (default deny plus one ALLOW per agent for
its declared callers), a Sidecar limiting egress, ServiceEntries for external APIs.

Metrics under STRICT mTLS: Prometheus runs outside the mesh and cannot present a mesh
certificate, so each agent's metrics port gets a port-level PERMISSIVE exception
(PeerAuthentication) and an ALLOW rule for that port without a source identity (a
plaintext caller has none). Who may reach the port at all is then limited by the
NetworkPolicy (kubernetes/network_policies.py) to the scraper's namespace.
"""

from __future__ import annotations

from typing import Any

from ..config.agent import AgentConfig
from ..config.backbone import agent_stores, kafka_hosts, store_host
from ..config.labels import object_meta, service_selector
from ..config.lookups import callers, metrics_port, scraper_namespace
from ..config.mesh import MtlsMode
from ..config.monitoring import SERVICE_ID
from ..config.system import SystemConfig
from .meta import api_version, principal, service_account_principal


def peer_authentications(system: SystemConfig, namespace: str, agents: list[AgentConfig]) -> list[dict[str, Any]]:
    """Namespace-wide mTLS mode, plus a PERMISSIVE metrics-port exception per agent (see module doc)."""
    mode = system.mesh.mtls_mode.value
    objects = [{"apiVersion": api_version(system, "security"), "kind": "PeerAuthentication",
                "metadata": object_meta(system, "default", namespace), "spec": {"mtls": {"mode": mode}}}]
    if not system.mesh.metrics_plaintext or system.mesh.mtls_mode is not MtlsMode.STRICT:
        return objects
    for agent in agents:
        port = metrics_port(system, agent)
        if port is None:
            continue
        objects.append({
            "apiVersion": api_version(system, "security"), "kind": "PeerAuthentication",
            "metadata": object_meta(system, f"{agent.agent_id}-metrics", namespace),
            "spec": {"selector": {"matchLabels": service_selector(agent)}, "mtls": {"mode": mode},
                     # Keyed by the container port, as the sidecar sees it.
                     "portLevelMtls": {str(port.container_port): {"mode": "PERMISSIVE"}}}})
    return objects


def authorization_policies(system: SystemConfig, namespace: str, agents: list[AgentConfig]) -> list[dict[str, Any]]:
    """Default deny for the namespace, and per agent an ALLOW for its callers and the metrics port."""
    mesh = system.mesh
    objects: list[dict[str, Any]] = [{"apiVersion": api_version(system, "security"), "kind": "AuthorizationPolicy",
                                      "metadata": object_meta(system, "default-deny", namespace), "spec": {}}]
    for agent in agents:
        principals = [principal(system, caller) for caller in callers(system, agent)]
        if agent.traffic.entrypoint:
            principals.append(service_account_principal(system, mesh.ingress_namespace, mesh.ingress_service_account))
        rules: list[dict[str, Any]] = []
        serving_ports = [str(port.container_port) for port in agent.ports if port.name != mesh.metrics_port_name]
        if principals:
            rules.append({"from": [{"source": {"principals": sorted(set(principals))}}],
                          "to": [{"operation": {"ports": serving_ports}}]})
        port = metrics_port(system, agent)
        if port is not None:
            metrics_rule: dict[str, Any] = {"to": [{"operation": {"ports": [str(port.container_port)]}}]}
            if not mesh.metrics_plaintext:
                metrics_rule["from"] = [{"source": {"namespaces": [scraper_namespace(system)]}}]
            rules.append(metrics_rule)
        if not rules:
            continue  # nobody may call it: the default deny covers it
        objects.append({"apiVersion": api_version(system, "security"), "kind": "AuthorizationPolicy",
                        "metadata": object_meta(system, f"{agent.agent_id}-allow", namespace),
                        "spec": {"selector": {"matchLabels": service_selector(agent)}, "action": "ALLOW",
                                 "rules": rules}})
    return objects


def sidecar(system: SystemConfig, namespace: str, agents: list[AgentConfig]) -> dict[str, Any]:
    """Egress of the namespace's sidecars: own namespace, called agents, control plane, the monitoring service,
    external APIs."""
    mesh = system.mesh
    called = {system.agent_namespace(target) for agent in agents for target in system.agents
              if target.agent_id in agent.talks_to}
    namespaces = sorted({namespace, mesh.control_plane_namespace, *called})
    hosts = [f"{'.' if name == namespace else name}/*" for name in namespaces]
    if system.monitoring.enabled and system.monitoring.namespace not in namespaces:
        # The monitoring service only (they send it telemetry), not everything in its namespace.
        monitoring = system.monitoring.namespace
        hosts.append(f"{monitoring}/{SERVICE_ID}.{monitoring}.svc.cluster.local")
    hosts += [f"./{host}" for api in mesh.external_apis for host in api.hosts]
    hosts += [host for host in kafka_hosts(system, agents) if host.split("/")[0] not in namespaces]
    for store in {store.name: store for agent in agents for store in agent_stores(system, agent)}.values():
        hosts.append(store_host(store))
    return {"apiVersion": api_version(system, "networking"), "kind": "Sidecar",
            "metadata": object_meta(system, "default", namespace),
            "spec": {"egress": [{"hosts": hosts}],
                     "outboundTrafficPolicy": {"mode": mesh.outbound_policy.value}}}


def service_entries(system: SystemConfig, namespace: str, agents: list[AgentConfig] | None = None) -> list[dict[str, Any]]:
    """External APIs the namespace's agents may call, and the stores outside the cluster they use, visible to
    that namespace only."""
    stores = {store.name: store for agent in agents or [] for store in agent_stores(system, agent)
              if store.namespace is None}
    entries = [{"apiVersion": api_version(system, "networking"), "kind": "ServiceEntry",
                "metadata": object_meta(system, f"store-{store.name}", namespace),
                "spec": {"hosts": [store.address], "location": "MESH_EXTERNAL", "resolution": "DNS",
                         "exportTo": ["."],
                         "ports": [{"number": store.port_number, "name": f"tcp-{store.port_number}",
                                    "protocol": "TCP"}]}}
               for store in stores.values()]
    return entries + [{"apiVersion": api_version(system, "networking"), "kind": "ServiceEntry",
             "metadata": object_meta(system, api.name, namespace),
             "spec": {"hosts": list(api.hosts), "location": "MESH_EXTERNAL", "resolution": "DNS",
                      "exportTo": ["."],
                      "ports": [{"number": api.port, "name": f"{api.protocol.value.lower()}-{api.port}",
                                 "protocol": api.protocol.value}]}}
            for api in system.mesh.external_apis]
