"""NetworkPolicies: default deny, ingress only along the call graph, and the monitoring pod's ingress."""

from __future__ import annotations


from components.kubernetes import network_policies

from ..mesh_system import agent_of, system_of


def test_network_policies_mirror_the_call_graph() -> None:
    system = system_of()
    policies = {p["metadata"]["name"]: p["spec"] for p in
                network_policies.network_policies(system, "agents-tools", [agent_of(system, "executor")])}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    callers = policies["executor-ingress"]["ingress"][0]
    assert callers["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "agents"}},
                                "podSelector": {"matchLabels": {"app": "coordinator"}}}]
    assert callers["ports"] == [{"port": "http", "protocol": "TCP"}]
    control_plane = policies["executor-ingress"]["ingress"][-1]
    assert control_plane == {"from": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "istio-system"}}}]}


