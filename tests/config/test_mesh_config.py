"""Mesh and release config: routes, weights, subsets, canary and blue-green rules, one message per problem."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from components.config import parse_system_config

from ..mesh_system import BASE
from .problems import problems_of


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


def production_pinned() -> dict[str, Any]:
    """The mesh system in production with every image (tracks and monitoring pod) pinned by digest."""
    raw = copy.deepcopy(BASE)
    raw["production"] = True
    digest = "sha256:" + "b" * 64
    for agent in raw["agents"]:
        agent["digest"] = digest
        if "canary" in agent:
            agent["canary"]["digest"] = digest
        if "blue_green" in agent:
            agent["blue_green"].update(blue_digest=digest, green_digest=digest)
    raw.setdefault("monitoring", {}).setdefault("service", {})["digest"] = digest
    return raw


def test_every_track_is_pinned_by_digest_in_production() -> None:
    raw = production_pinned()
    parse_system_config(raw)
    del raw["agents"][2]["blue_green"]["green_digest"]
    [problem] = problems_of(raw)
    assert problem.startswith("agents[2].blue_green.green_digest: is required when production is true")

def test_production_refuses_a_mesh_that_accepts_plaintext() -> None:
    raw = production_pinned()
    raw["mesh"]["mtls_mode"] = "PERMISSIVE"
    [problem] = problems_of(raw)
    assert problem.startswith("mesh.mtls_mode: 'PERMISSIVE' accepts plaintext from any pod")


def test_production_keeps_the_network_policies() -> None:
    raw = production_pinned()
    raw["mesh"]["network_policies"] = False
    [problem] = problems_of(raw)
    assert problem.startswith("mesh.network_policies: production keeps the agents' NetworkPolicies")
