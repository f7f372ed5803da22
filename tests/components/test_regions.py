"""Region stacks: the region's config errors at their fields, what it changes in the objects (locality load
balancing, node affinity, the mesh network), and the shared system file the region stacks name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigError, parse_system_config
from components.config.stack_keys import combine
from components.istio import traffic
from components.kubernetes import namespaces, workload
from components.pulumi_config import read_system_file
from components.render.cli import render_stack
from components.render.diagram import stack_system

from ..conftest import PROJECT_DIR
from ..config.problems import problems_of
from ..crd import validate_custom_resource

REGION = {"name": "us-east-1", "zones": ["us-east-1a", "us-east-1b"], "routing": "weighted", "network": "net-a"}
RAW: dict[str, Any] = {"mesh": {"enabled": True}, "region": REGION,
                       "agents": [{"agent_id": "planner", "image": "x/planner", "tag": "1"}]}
REGION_STACKS = ["prod-us-east-1", "prod-eu-west-1", "prod-ap-southeast-1"]


def with_region(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    raw["region"].update(changes)
    return raw


@pytest.mark.parametrize(("raw", "expected"), [
    (with_region(weights={"us-east-1": 50, "eu-west-1": 30, "ap-southeast-1": 30}),
     "region.weights: weights sum to 110, not 100"),
    (with_region(routing="latency-based"), "region.routing: latency-based cannot be expressed in Istio"),
    (with_region(mode="active-passive", routing="geographic"), "region.failover_to: mode: active-passive needs"),
    (with_region(weights={"eu-west-1": 50, "ap-southeast-1": 50}), "region.weights: this region (us-east-1) has no weight"),
    (with_region(mode="active-passive", failover_to="us-west-2"), "region.mode: Istio applies either weights"),
    (with_region(mode="active-passive", routing="geographic", failover_to="us-east-1"),
     "region.failover_to: 'us-east-1' is this region"),
    ({**with_region(mode="active-passive", routing="geographic", failover_to="us-west-2"), "mesh": {"enabled": False}},
     "region.mode: spreading calls across regions"),
    ({**with_region(), "agents": [{"agent_id": "planner", "image": "x/p", "tag": "1",
                                  "canary": {"tag": "2", "controller": "flagger"}}]},
     "agents[0].canary.controller: Flagger writes this agent's traffic policy"),
    ({**with_region(), "mesh": {"enabled": False}}, "region.routing: spreading calls across regions is Istio's"),
    ({**with_region(), "agents": [{"agent_id": "planner", "image": "x/p", "tag": "1",
                                  "traffic": {"outlier_detection": None}}]},
     "agents[0].traffic.outlier_detection: locality load balancing across regions"),
])
def test_region_mistakes_are_reported_at_their_field(raw: dict[str, Any], expected: str) -> None:
    assert any(expected in problem for problem in problems_of(raw)), problems_of(raw)


def test_weighted_routing_is_istio_distribute_and_failover_is_failover() -> None:
    system = parse_system_config(copy.deepcopy(RAW))
    rule = traffic.destination_rule(system, system.agents[0])
    assert rule["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"] == {
        "enabled": True, "distribute": [{"from": "us-east-1/*", "to": {"us-east-1/*": 40, "eu-west-1/*": 30,
                                                                       "ap-southeast-1/*": 30}}]}
    assert "outlierDetection" in rule["spec"]["trafficPolicy"]  # what makes locality failover move traffic
    validate_custom_resource(rule)
    passive = parse_system_config(with_region(mode="active-passive", routing="geographic", failover_to="us-west-2"))
    setting = traffic.destination_rule(passive, passive.agents[0])["spec"]["trafficPolicy"]["loadBalancer"][
        "localityLbSetting"]
    assert setting == {"enabled": True, "failover": [{"from": "us-east-1", "to": "us-west-2"}]}
    geographic = parse_system_config(with_region(routing="geographic"))
    assert traffic.destination_rule(geographic, geographic.agents[0])["spec"]["trafficPolicy"]["loadBalancer"][
        "localityLbSetting"] == {"enabled": True}


def test_pods_stay_in_the_region_and_its_zones_and_namespaces_name_the_network() -> None:
    system = parse_system_config(copy.deepcopy(RAW))
    pod = workload.deployment(system, system.agents[0])["spec"]["template"]["spec"]
    [term] = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["us-east-1"]},
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "us-east-1b"]}]
    assert "podAntiAffinity" in pod["affinity"]  # the spreading stays
    labels = namespaces.namespace(system, "agents")["metadata"]["labels"]
    assert labels["topology.istio.io/network"] == "net-a"


def test_the_system_comes_from_one_place_and_the_region_from_another() -> None:
    system = {"agents": [{"agent_id": "a", "image": "x/a"}]}
    assert combine(None, system, REGION)["region"] == REGION
    with pytest.raises(ConfigError, match="also sets multi-agent-system:system"):
        combine(system, system, None)
    with pytest.raises(ConfigError, match="is not set"):
        combine(None, None, REGION)
    with pytest.raises(ConfigError, match="already sets `region`"):
        combine({**system, "region": REGION}, None, REGION)


def test_the_system_file_must_be_inside_the_project(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file in the project"):
        read_system_file(PROJECT_DIR, "../shared/SEEDS.md")
    with pytest.raises(ConfigError, match="is not a file in the project"):
        read_system_file(PROJECT_DIR, "systems/nope.yaml")
    (tmp_path / "bad.yaml").write_text("agents: [")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        read_system_file(tmp_path, "bad.yaml")


def test_region_stacks_share_the_system_and_differ_only_in_region_facts() -> None:
    systems = {stack: stack_system(stack) for stack in ["prod", *REGION_STACKS]}
    base = systems["prod"].model_dump(exclude={"region"})
    for stack in REGION_STACKS:
        assert systems[stack].model_dump(exclude={"region"}) == base, stack
        assert systems[stack].region is not None and systems[stack].region.name == stack.removeprefix("prod-")
    assert systems["prod"].region is None


@pytest.mark.parametrize("stack", REGION_STACKS[:2])
def test_two_regions_render_the_same_agents_with_their_own_locality(stack: str) -> None:
    rendered = render_stack(stack)
    rules = [obj for obj in rendered.objects if obj["kind"] == "DestinationRule"]
    region = stack.removeprefix("prod-")
    assert rules and all(rule["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["distribute"][0]["from"]
                         == f"{region}/*" for rule in rules)
    deployments = [obj for obj in rendered.objects if obj["kind"] == "Deployment"]
    assert all(deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"] for deployment in deployments)


def test_the_users_node_affinity_keeps_the_region() -> None:
    raw = copy.deepcopy(RAW)
    raw["agents"][0]["scheduling"] = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}]}}}}
    system = parse_system_config(raw)
    pod = workload.deployment(system, system.agents[0])["spec"]["template"]["spec"]
    [term] = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert [expression["key"] for expression in term["matchExpressions"]] == [
        "gpu", "topology.kubernetes.io/region", "topology.kubernetes.io/zone"]


def test_alerts_of_a_region_stack_say_the_region() -> None:
    from components.prometheus.rules import prometheus_rule

    system = parse_system_config(copy.deepcopy(RAW))
    alerts = [rule for group in prometheus_rule(system)["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
    assert alerts and all(rule["labels"]["region"] == "us-east-1" for rule in alerts)
