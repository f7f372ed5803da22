"""Istio traffic builders: VirtualService routes, DestinationRule policies and subsets, the Flagger Canary."""

from __future__ import annotations

import copy

import pytest

from components.config import parse_system_config, releases
from components.istio import traffic

from ..crd import validate_custom_resource
from ..mesh_system import BASE, agent_of, system_of

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
    assert policy["connectionPool"]["http"] == {"http1MaxPendingRequests": 50, "http2MaxRequests": 100,
                                                "maxRequestsPerConnection": 10, "maxRetries": 3}  # the seed's
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
    validate_custom_resource(rule)


# --- Flagger ---------------------------------------------------------------------------------

def test_flagger_hand_off_builds_the_canary() -> None:
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
    validate_custom_resource(canary)
