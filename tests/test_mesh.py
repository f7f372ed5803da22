"""AgentMesh: Istio traffic objects, releases, zero trust, and their agreement; schemas and mocks."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pulumi
import pytest

from components.config import releases
from components.istio import security, traffic
from components.kubernetes import network_policies, workload
from components.agent_mesh import AgentMesh, AgentMeshArgs
from components.config import parse_system_config
from components.config import ConfigError
from components.render.mock_runtime import RecordingMonitor

from .crd import validate_custom_resource

BASE: dict[str, Any] = {
    "namespace": "agents",
    "groups": {"tools": {"quota": None, "limit_range": None}},
    "mesh": {"enabled": True, "outbound_policy": "REGISTRY_ONLY",
             "external_apis": [{"name": "openai", "hosts": ["api.openai.com"]}]},
    "agents": [
        {"agent_id": "coordinator", "image": "x/coordinator", "tag": "1.0.0",
         "talks_to": ["researcher", "executor"], "traffic": {"entrypoint": True},
         "routing_rules": [
             {"name": "tasks", "match": {"uri": {"prefix": "/tasks"}, "headers": {"x-tenant": {"exact": "a"}}},
              "rewrite_uri": "/v2/tasks", "timeout": "90s",
              "retries": {"attempts": 4, "per_try_timeout": "20s", "retry_on": "5xx"}},
             {"name": "submit", "match": {"uri": {"exact": "/submit"}}, "idempotent": False},
             {"name": "chaos", "match": {"uri": {"regex": "^/chaos/.*"}},
              "fault": {"delay": {"fixed_delay": "2s", "percentage": 10},
                        "abort": {"http_status": 503, "percentage": 5}}}],
         "load_balancer": {"consistent_hash_header": "x-session-id"}},
        {"agent_id": "researcher", "image": "x/researcher", "tag": "3.1.0",
         "canary": {"tag": "3.2.0", "weight": 5}, "load_balancer": "ROUND_ROBIN",
         "routing_rules": [{"name": "split", "route": [{"subset": "stable", "weight": 80},
                                                       {"subset": "canary", "weight": 20}]}]},
        {"agent_id": "executor", "image": "x/executor", "group": "tools",
         "blue_green": {"blue_tag": "1.0.0", "green_tag": "1.1.0", "active": "green"}},
    ],
}


def system_of(**changes: Any) -> Any:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return parse_system_config(raw)


def agent_of(system: Any, agent_id: str) -> Any:
    return next(agent for agent in system.agents if agent.agent_id == agent_id)


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_system_config(raw)
    return [str(problem) for problem in caught.value.problems]


def validate_against_crd(obj: dict[str, Any]) -> None:
    validate_custom_resource(obj)


# --- VirtualService --------------------------------------------------------------------------

def test_routes_from_rules() -> None:
    system = system_of()
    http = traffic.virtual_service(system, agent_of(system, "coordinator"))["spec"]["http"]
    host = "coordinator.agents.svc.cluster.local"
    tasks, submit, chaos, default = http
    assert tasks["match"] == [{"uri": {"prefix": "/tasks"}, "headers": {"x-tenant": {"exact": "a"}}}]
    assert tasks["rewrite"] == {"uri": "/v2/tasks"} and tasks["timeout"] == "90s"
    assert tasks["retries"] == {"attempts": 4, "perTryTimeout": "20s", "retryOn": "5xx"}
    assert submit["retries"] == {"attempts": 0}  # non-idempotent: explicitly no retries
    assert chaos["match"] == [{"uri": {"regex": "^/chaos/.*"}}]
    assert chaos["fault"] == {"delay": {"fixedDelay": "2s", "percentage": {"value": 10.0}},
                              "abort": {"httpStatus": 503, "percentage": {"value": 5.0}}}
    assert "retries" not in chaos and "timeout" not in chaos
    assert default["name"] == "default" and "match" not in default
    assert default["route"] == [{"destination": {"host": host, "subset": "stable"}}]


def test_every_agent_gets_a_default_route() -> None:
    system = parse_system_config({"mesh": {"enabled": True}, "agents": [{"agent_id": "a", "image": "x/a"}]})
    [route] = traffic.virtual_service(system, system.agents[0])["spec"]["http"]
    assert route["name"] == "default" and route["timeout"] == "60s" and route["retries"]["attempts"] == 3


def test_canary_header_and_weights() -> None:
    system = system_of()
    http = traffic.virtual_service(system, agent_of(system, "researcher"))["spec"]["http"]
    host = "researcher.agents.svc.cluster.local"
    split, header, default = http
    assert [(part["destination"]["subset"], part["weight"]) for part in split["route"]] == [("stable", 80),
                                                                                          ("canary", 20)]
    assert header["match"] == [{"headers": {"canary-test": {"exact": "enabled"}}}]
    assert header["route"] == [{"destination": {"host": host, "subset": "canary"}}]
    assert default["route"] == [{"destination": {"host": host, "subset": "stable"}, "weight": 95},
                                {"destination": {"host": host, "subset": "canary"}, "weight": 5}]


# --- DestinationRule -------------------------------------------------------------------------

def test_destination_rule_policies_and_subsets() -> None:
    system = system_of()
    rule = traffic.destination_rule(system, agent_of(system, "researcher"))["spec"]
    policy = rule["trafficPolicy"]
    assert policy["loadBalancer"] == {"simple": "ROUND_ROBIN"}
    assert policy["connectionPool"]["http"] == {"http1MaxPendingRequests": 100, "http2MaxRequests": 1000,
                                                "maxRetries": 3}
    assert policy["connectionPool"]["tcp"] == {"maxConnections": 100, "connectTimeout": "5s"}
    assert policy["outlierDetection"] == {"consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "30s",
                                          "maxEjectionPercent": 50, "minHealthPercent": 30}
    assert policy["tls"] == {"mode": "ISTIO_MUTUAL"}
    assert rule["subsets"] == [{"name": "stable", "labels": {"version": "stable"}},
                               {"name": "canary", "labels": {"version": "canary"}}]
    hashed = traffic.destination_rule(system, agent_of(system, "coordinator"))["spec"]["trafficPolicy"]
    assert hashed["loadBalancer"] == {"consistentHash": {"httpHeaderName": "x-session-id"}}


@pytest.mark.parametrize("algorithm", ["ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN", "RANDOM", "PASSTHROUGH"])
def test_load_balancer_algorithms_validate(algorithm: str) -> None:
    raw = {"mesh": {"enabled": True}, "agents": [{"agent_id": "a", "image": "x/a", "load_balancer": algorithm}]}
    system = parse_system_config(raw)
    rule = traffic.destination_rule(system, system.agents[0])
    assert rule["spec"]["trafficPolicy"]["loadBalancer"] == {"simple": algorithm}
    validate_against_crd(rule)


# --- releases --------------------------------------------------------------------------------

def test_canary_runs_a_second_deployment_built_by_the_same_code() -> None:
    system = system_of()
    researcher = agent_of(system, "researcher")
    stable, canary = releases.tracks(researcher)
    assert (canary.name, canary.replicas, canary.autoscaled) == ("canary", 1, False)
    deployment = workload.deployment(system, canary.agent, canary.name, canary.replicas)
    assert deployment["metadata"]["name"] == "researcher-canary"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "researcher", "track": "canary"}
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/version"] == "3.2.0"  # labelled with the canary version
    assert pod["metadata"]["labels"]["version"] == "canary"  # what the DestinationRule subset selects
    assert pod["spec"]["containers"][0]["image"] == "x/researcher:3.2.0"
    stable_pod = workload.deployment(system, stable.agent, stable.name)["spec"]["template"]
    # Same hardening as the stable one: only the image and track differ.
    assert pod["spec"]["securityContext"] == stable_pod["spec"]["securityContext"]
    assert workload.service(system, researcher)["spec"]["selector"] == {"app": "researcher"}


def test_blue_green_switch_is_one_field() -> None:
    system = system_of()
    executor = agent_of(system, "executor")
    blue, green = sorted(releases.tracks(executor), key=lambda track: track.name)
    assert green.serving and green.autoscaled and not blue.serving and blue.replicas == 2
    assert workload.service(system, executor)["spec"]["selector"] == {"app": "executor", "track": "green"}
    [route] = traffic.virtual_service(system, executor)["spec"]["http"]
    assert route["route"][0]["destination"]["subset"] == "green"
    assert workload.horizontal_pod_autoscaler(system, green.agent, green.name)["spec"]["scaleTargetRef"][
        "name"] == "executor-green"

    raw = copy.deepcopy(BASE)
    raw["agents"][2]["blue_green"].update(active="blue", scale_down_inactive=True)
    switched = agent_of(parse_system_config(raw), "executor")
    tracks = {track.name: track for track in releases.tracks(switched)}
    assert tracks["blue"].serving and tracks["green"].replicas == 0
    assert workload.service(system, switched)["spec"]["selector"]["track"] == "blue"


def test_flagger_hand_off(mocks: Callable[..., RecordingMonitor]) -> None:
    raw = copy.deepcopy(BASE)
    raw["agents"][1]["canary"]["controller"] = "flagger"
    raw["agents"][1]["routing_rules"] = []
    system = parse_system_config(raw)
    researcher = agent_of(system, "researcher")
    assert [track.name for track in releases.tracks(researcher)] == ["stable"]
    canary = traffic.flagger_canary(system, researcher, autoscaled=True)
    assert canary["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "researcher"}
    assert canary["spec"]["autoscalerRef"]["name"] == "researcher"
    assert canary["spec"]["analysis"]["stepWeight"] == 5
    validate_against_crd(canary)

    monitor = run_components(mocks, raw)
    names = {(r.type, r.name): r for r in monitor.registrations}
    assert ("kubernetes:flagger.app/v1beta1:Canary", "mesh-researcher-canary") in names
    assert ("kubernetes:networking.istio.io/v1:VirtualService", "mesh-researcher-virtual-service") not in names
    assert ("kubernetes:core/v1:Service", "agents-researcher-service") not in names  # Flagger owns it
    assert names[("kubernetes:apps/v1:Deployment", "agents-researcher-deployment")].ignore_changes == ["spec.replicas"]


def test_argo_rollouts_hand_off(mocks: Callable[..., RecordingMonitor]) -> None:
    raw = copy.deepcopy(BASE)
    raw["agents"][1]["canary"]["controller"] = "argo-rollouts"
    monitor = run_components(mocks, raw)
    found = {r.name: r for r in monitor.registrations}
    assert found["mesh-researcher-virtual-service"].ignore_changes == ["spec.http"]
    assert found["mesh-researcher-destination-rule"].ignore_changes == ["spec.subsets"]
    assert "agents-researcher-deployment-canary" not in found  # Argo runs the new version itself
    default = found["mesh-researcher-virtual-service"].inputs["spec"]["http"][-1]
    assert default["name"] == "primary"  # Argo Rollouts finds the route by name


# --- zero trust ------------------------------------------------------------------------------

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


def test_sidecar_and_service_entries() -> None:
    system = system_of()
    agents = [agent for agent in system.agents if system.agent_namespace(agent) == "agents"]
    sidecar = security.sidecar(system, "agents", agents)["spec"]
    assert sidecar["egress"] == [{"hosts": ["./*", "agents-tools/*", "istio-system/*", "monitoring/*",
                                            "./api.openai.com"]}]
    assert sidecar["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    [entry] = security.service_entries(system, "agents")
    assert entry["spec"] == {"hosts": ["api.openai.com"], "location": "MESH_EXTERNAL", "resolution": "DNS",
                             "exportTo": ["."], "ports": [{"number": 443, "name": "tls-443", "protocol": "TLS"}]}


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_every_mesh_object_matches_its_crd(version: str) -> None:
    system = system_of(mesh={**BASE["mesh"], "api_version": version})
    objects = []
    for agent in system.agents:
        objects += [traffic.virtual_service(system, agent), traffic.destination_rule(system, agent)]
    for namespace in ("agents", "agents-tools"):
        agents = [agent for agent in system.agents if system.agent_namespace(agent) == namespace]
        objects += [*security.peer_authentications(system, namespace, agents),
                    *security.authorization_policies(system, namespace, agents),
                    security.sidecar(system, namespace, agents), *security.service_entries(system, namespace)]
    assert {obj["apiVersion"].split("/")[1] for obj in objects} == {version}
    for obj in objects:
        validate_against_crd(obj)


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("change, expected", [
    (lambda raw: raw["agents"][0]["routing_rules"][2].update(timeout="5s"),
     "agents[0].routing_rules[2].fault: Istio ignores timeout and retries on a route with fault injection"),
    (lambda raw: raw["agents"][1]["routing_rules"][0]["route"][1].update(weight=30),
     "agents[1].routing_rules[0].route: weights add up to 110; they must add up to 100"),
    (lambda raw: raw["agents"][1]["routing_rules"][0]["route"][1].update(subset="green"),
     "agents[1].routing_rules[0].route[1].subset: 'green' is not a subset of this agent; use one of: stable, canary"),
    (lambda raw: raw["agents"][1]["canary"].update(tag="3.1.0"),
     "agents[1].canary.tag: '3.1.0' is the stable tag too"),
    (lambda raw: raw["agents"][2].update(canary={"tag": "2"}),
     "agents[2].canary: an agent has either a canary or blue_green, not both"),
    (lambda raw: raw["mesh"].update(enabled=False),
     "agents[1].canary: canary weights are applied by Istio; set mesh.enabled: true"),
    (lambda raw: raw["mesh"].update(istio_cni=False),
     "mesh.istio_cni: without Istio CNI the sidecar's init container needs NET_ADMIN"),
    (lambda raw: raw["agents"][0].update(talks_to=["researcher", "executer"]),
     "agents[0].talks_to[1]: no agent has agent_id 'executer'; did you mean 'executor'?"),
])
def test_mesh_config_errors(change: Callable[[dict[str, Any]], None], expected: str) -> None:
    raw = copy.deepcopy(BASE)
    change(raw)
    problems = problems_of(raw)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_blue_green_tags_are_checked_in_production() -> None:
    raw = copy.deepcopy(BASE)
    raw["production"] = True
    parse_system_config(raw)  # the blue-green agent's own `tag` is unused, so its default is no problem
    raw["agents"][2]["blue_green"]["green_tag"] = "latest"
    assert problems_of(raw) == ["agents[2].blue_green.green_tag: tag 'latest' is not allowed when production is "
                                "true; pin a version such as '1.4.2'"]


# --- the component under mocks ---------------------------------------------------------------

def run_components(mocks: Callable[..., RecordingMonitor], raw: dict[str, Any]) -> RecordingMonitor:
    from components.agent_deployment import AgentDeployment, AgentDeploymentArgs

    monitor = mocks()

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        system = parse_system_config(raw)
        agents = AgentDeployment("agents", AgentDeploymentArgs(system))
        component = AgentMesh("mesh", AgentMeshArgs(system, [agents]))
        return pulumi.Output.all(component.urn, component.traffic, component.policies)

    program()
    return monitor


def test_mesh_component_registers_and_parents(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = run_components(mocks, BASE)
    mesh_children = [r for r in monitor.registrations if r.parent.endswith("AgentMesh::mesh")]
    kinds = sorted({r.type.split(":")[-1] for r in mesh_children})
    assert kinds == ["AuthorizationPolicy", "DestinationRule", "NetworkPolicy", "PeerAuthentication",
                     "ServiceEntry", "Sidecar", "VirtualService"]
    namespaces = [r for r in monitor.registrations if r.type == "kubernetes:core/v1:Namespace"]
    assert all(r.inputs["metadata"]["labels"]["istio-injection"] == "enabled" for r in namespaces)


def test_outputs_list_the_objects(mocks: Callable[..., RecordingMonitor]) -> None:
    from components.agent_deployment import AgentDeployment, AgentDeploymentArgs

    mocks()

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        system = parse_system_config(BASE)
        component = AgentMesh("mesh", AgentMeshArgs(system, [AgentDeployment("agents", AgentDeploymentArgs(system))]))

        def check(args: list[Any]) -> None:
            urn, traffic, policies = args
            assert "VirtualService agents/researcher" in traffic, urn
            assert "DestinationRule agents-tools/executor" in traffic, urn
            assert "AuthorizationPolicy agents/default-deny" in policies, urn
            assert "NetworkPolicy agents-tools/executor-ingress" in policies, urn

        return pulumi.Output.all(component.urn, component.traffic, component.policies).apply(check)

    program()


def test_mesh_disabled_keeps_only_network_policies(mocks: Callable[..., RecordingMonitor]) -> None:
    raw = copy.deepcopy(BASE)
    raw["mesh"] = {"enabled": False}
    raw["agents"][1].pop("canary")
    raw["agents"][1]["routing_rules"] = []
    monitor = run_components(mocks, raw)
    kinds = {r.type.split(":")[-1] for r in monitor.registrations if r.parent.endswith("AgentMesh::mesh")}
    assert kinds == {"NetworkPolicy"}


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
    validate_against_crd(allow)
    # In its own namespace (the default), the monitoring pod is not under these policies.
    default = system_of()
    assert not any(p["metadata"]["name"].startswith("agent-monitoring")
                   for p in network_policies.network_policies(default, "agents", agents))
