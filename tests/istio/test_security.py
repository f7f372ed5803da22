"""Istio zero trust: AuthorizationPolicies along the call graph, PeerAuthentication, Sidecar, ServiceEntries."""

from __future__ import annotations

from components.istio import security
from components.kubernetes import network_policies, workload

from ..mesh_system import agent_of, system_of


def test_authorization_follows_the_call_graph() -> None:
    system = system_of()
    agents = [agent for agent in system.agents if system.agent_namespace(agent) == "agents"]
    policies = {p["metadata"]["name"]: p for p in security.authorization_policies(system, "agents", agents)}
    assert policies["default-deny"]["spec"] == {}
    researcher = policies["researcher-allow"]["spec"]
    assert researcher["selector"] == {"matchLabels": {"app": "researcher"}}
    callers, metrics = researcher["rules"]
    assert callers["from"] == [{"source": {"principals": ["cluster.local/ns/agents/sa/coordinator"]}}]
    assert callers["to"] == [{"operation": {"ports": ["8080"]}}]
    assert metrics == {"to": [{"operation": {"ports": ["9090"]}}]}  # plaintext scrape: no identity to check
    coordinator = policies["coordinator-allow"]["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert coordinator == ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]
    executor = security.authorization_policies(system, "agents-tools", [agent_of(system, "executor")])[1]
    assert executor["spec"]["rules"][0]["from"][0]["source"]["principals"] == [
        "cluster.local/ns/agents/sa/coordinator"]


def test_metrics_objects_agree_under_strict_mtls() -> None:
    """PeerAuthentication, AuthorizationPolicy, NetworkPolicy and Service name the same metrics port."""
    system = system_of()
    for agent in system.agents:
        namespace = system.agent_namespace(agent)
        metrics = next(port for port in agent.ports if port.name == "metrics")
        peer = next(p for p in security.peer_authentications(system, namespace, [agent])
                    if p["metadata"]["name"] == f"{agent.agent_id}-metrics")
        assert peer["spec"]["mtls"] == {"mode": "STRICT"}
        assert peer["spec"]["portLevelMtls"] == {str(metrics.container_port): {"mode": "PERMISSIVE"}}
        allow = security.authorization_policies(system, namespace, [agent])[1]
        assert {"to": [{"operation": {"ports": [str(metrics.container_port)]}}]} in allow["spec"]["rules"]
        policy = network_policies.network_policies(system, namespace, [agent])[1]
        monitoring = [rule for rule in policy["spec"]["ingress"]
                      if rule["from"] == [{"namespaceSelector": {"matchLabels": {
                          "kubernetes.io/metadata.name": "monitoring"}}}] and "ports" in rule]
        assert monitoring[0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
        container = workload.deployment(system, agent)["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": metrics.container_port, "protocol": "TCP"} in container["ports"]


def test_sidecar_and_service_entries() -> None:
    system = system_of()
    agents = [agent for agent in system.agents if system.agent_namespace(agent) == "agents"]
    sidecar = security.sidecar(system, "agents", agents)["spec"]
    # The monitoring service only, not everything in its namespace.
    assert sidecar["egress"] == [{"hosts": ["./*", "agents-tools/*", "istio-system/*",
                                            "monitoring/agent-monitoring.monitoring.svc.cluster.local",
                                            "./api.openai.com"]}]
    assert sidecar["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    [entry] = security.service_entries(system, "agents")
    assert entry["spec"] == {"hosts": ["api.openai.com"], "location": "MESH_EXTERNAL", "resolution": "DNS",
                             "exportTo": ["."], "ports": [{"number": 443, "name": "tls-443", "protocol": "TLS"}]}
