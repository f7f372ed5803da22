"""The monitoring namespace's zero trust: which flows its NetworkPolicy and (with the mesh) its Istio
policies admit, asked of the rendered objects flow by flow (tests/policy_eval.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config import parse_system_config
from components.config.errors import ConfigError
from components.config.system import SystemConfig
from components.istio import monitoring as istio_monitoring
from components.kubernetes.monitoring_network import endpoint_rule, monitoring_network_policy
from components.kubernetes.network_policies import network_policies

from ..crd import validate_custom_resource
from ..monitored_system import RAW
from ..policy_eval import Pod, mesh_allows, network_allows

MONITORING = Pod("monitoring", {"app": "agent-monitoring"}, "10.1.0.5", {"http": 8000})
PLANNER = Pod("agents", {"app": "planner", "agent-id": "planner"}, "10.2.0.7", {"http": 8080, "metrics": 9090})
TOOL = Pod("agents-tools", {"app": "tool", "agent-id": "tool"}, "10.2.0.8", {"http": 8080, "metrics": 9090})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}, "10.1.0.9")
ALERTMANAGER = Pod("monitoring", {"app.kubernetes.io/name": "alertmanager"}, "10.1.0.10", {"web": 9093})
STRANGER = Pod("default", {"app": "curious"}, "10.3.0.4", {"http": 80})
DNS = Pod("kube-system", {"k8s-app": "kube-dns"}, "10.96.0.10")


def system(**service: Any) -> SystemConfig:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["service"].update(service)
    raw["mesh"] = {"enabled": True}
    return parse_system_config(raw)


def policies(config: SystemConfig) -> list[dict[str, Any]]:
    """The monitoring pod's policy and the agent namespaces' own, as rendered."""
    objects = [monitoring_network_policy(config)]
    for namespace in ("agents", "agents-tools"):
        agents = [agent for agent in config.agents if config.agent_namespace(agent) == namespace]
        objects += network_policies(config, namespace, agents)
    return objects


def test_who_may_reach_the_monitoring_pod() -> None:
    rendered = policies(system())
    assert network_allows(rendered, PLANNER, MONITORING, 8000)      # telemetry from the agents
    assert network_allows(rendered, TOOL, MONITORING, 8000)
    assert network_allows(rendered, PROMETHEUS, MONITORING, 8000)   # /metrics
    assert not network_allows(rendered, STRANGER, MONITORING, 8000)
    assert not network_allows(rendered, PLANNER, MONITORING, 9090)  # nothing but the service port


def test_what_the_monitoring_pod_may_reach() -> None:
    rendered = policies(system(kubernetes_api_cidrs=["10.0.0.1/32"]))
    assert network_allows(rendered, MONITORING, DNS, 53, "UDP")
    assert network_allows(rendered, MONITORING, PLANNER, 9090)      # scrapes the metrics port...
    assert network_allows(rendered, MONITORING, TOOL, 9090)
    assert not network_allows(rendered, MONITORING, PLANNER, 8080)  # ...and nothing else of the agents
    assert network_allows(rendered, MONITORING, ALERTMANAGER, 9093)
    assert network_allows(rendered, MONITORING, Pod("", ip="10.0.0.1"), 443)  # the Kubernetes API
    assert not network_allows(rendered, MONITORING, Pod("", ip="169.254.169.254"), 80)
    assert not network_allows(rendered, MONITORING, Pod("", ip="8.8.8.8"), 443)
    assert not network_allows(rendered, MONITORING, STRANGER, 80)


def test_with_the_mesh_its_sidecar_reaches_istiod_only_there() -> None:
    istiod = Pod("istio-system", {"app": "istiod"}, "10.5.0.2")
    assert network_allows(policies(system()), MONITORING, istiod, 15012)
    assert not network_allows(policies(system()), MONITORING, istiod, 15014)
    raw = copy.deepcopy(RAW)
    assert not network_allows([monitoring_network_policy(parse_system_config(raw))], MONITORING, istiod, 15012)


def test_the_trace_relay_and_api_clients_are_let_through() -> None:
    config = system(trace_relay={"endpoint": "http://otel-collector.observability.svc:4318"},
                    api_client_namespaces=["ingress-nginx"])
    rendered = policies(config)
    collector = Pod("observability", {"app": "otel-collector"}, "10.4.0.2")
    assert network_allows(rendered, MONITORING, collector, 4318)
    assert not network_allows(rendered, MONITORING, collector, 4317)
    assert network_allows(rendered, Pod("ingress-nginx", {"app": "controller"}), MONITORING, 8000)
    assert endpoint_rule("https://tempo.example.com/otlp")["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert endpoint_rule("http://10.9.8.7:4318")["to"] == [{"ipBlock": {"cidr": "10.9.8.7/32"}}]


def test_in_the_mesh_agents_may_only_ingest_and_plaintext_only_read_metrics() -> None:
    config = system(api_client_namespaces=["ingress-nginx"])
    objects = [istio_monitoring.monitoring_authorization_policy(config),
               istio_monitoring.monitoring_peer_authentication(config)]
    for obj in objects:
        validate_custom_resource(obj)
    agent = "cluster.local/ns/agents-tools/sa/tool"
    for method, path, allowed in (("POST", "/v1/traces", True), ("POST", "/v1/logs", True),
                                  ("POST", "/api/v1/spans/abc/finish", True), ("GET", "/api/v1/agents", False),
                                  ("POST", "/api/v1/agents", False), ("DELETE", "/api/v1/agents/x", False)):
        assert mesh_allows(objects, MONITORING, agent, "agents-tools", method, path, 8000) is allowed, (method, path)
    for method, path, allowed in (("GET", "/metrics", True), ("GET", "/health/ready", True),
                                  ("POST", "/v1/traces", False), ("GET", "/api/v1/agents", False)):
        assert mesh_allows(objects, MONITORING, None, None, method, path, 8000) is allowed, (method, path)
    stranger = "cluster.local/ns/default/sa/curious"
    assert not mesh_allows(objects, MONITORING, stranger, "default", "POST", "/v1/traces", 8000)
    assert mesh_allows(objects, MONITORING, "cluster.local/ns/ingress-nginx/sa/controller", "ingress-nginx",
                       "GET", "/api/v1/agents", 8000)


def test_kubernetes_api_ranges_must_be_ranges() -> None:
    with pytest.raises(ConfigError, match="kubernetes_api_cidrs.*10.0.0.0/8"):
        system(kubernetes_api_cidrs=["the-api-server"])
