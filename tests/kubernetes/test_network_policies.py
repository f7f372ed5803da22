"""NetworkPolicies: default deny, ingress only along the call graph, and the monitoring pod's ingress."""

from __future__ import annotations

import copy

from components.config import parse_system_config
from components.istio import security
from components.kubernetes import network_policies

from ..crd import validate_custom_resource
from ..mesh_system import BASE, agent_of, system_of


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


def test_monitoring_pod_next_to_the_agents_accepts_their_traces() -> None:
    raw = copy.deepcopy(BASE)
    raw["monitoring"] = {"namespace": "agents"}
    system = parse_system_config(raw)
    agents = [agent for agent in system.agents if system.agent_namespace(agent) == "agents"]
    policy = next(p for p in network_policies.network_policies(system, "agents", agents)
                  if p["metadata"]["name"] == "agent-monitoring-ingress")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "agent-monitoring"}}
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert len(policy["spec"]["ingress"][0]["from"]) == 2  # both agent namespaces
    allow = next(p for p in security.authorization_policies(system, "agents", agents)
                 if p["metadata"]["name"] == "agent-monitoring-allow")
    assert "cluster.local/ns/agents-tools/sa/executor" in allow["spec"]["rules"][0]["from"][0]["source"]["principals"]
    validate_custom_resource(allow)
    # In its own namespace (the default), the monitoring pod is not under these policies.
    default = system_of()
    assert not any(p["metadata"]["name"].startswith("agent-monitoring")
                   for p in network_policies.network_policies(default, "agents", agents))
