"""The system config: seed compatibility, defaults, and one clear message per problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config import SystemConfig, parse_system_config
from components.config.types import LoadBalancerAlgorithm, PodSecurityLevel, Protocol

from ..conftest import SEED_SYSTEM
from .problems import problems_of


def with_agent(**fields: Any) -> dict[str, Any]:
    """A minimal valid system whose single agent has `fields` on top of the required ones."""
    return {"agents": [{"agent_id": "agent-a", "image": "ghcr.io/acme/agent", "tag": "1.0.0", **fields}]}


# --- what valid config turns into ---------------------------------------------------------------

def test_seed_style_config_is_accepted_as_is() -> None:
    system = parse_system_config(copy.deepcopy(SEED_SYSTEM))
    agent = system.agents[0]
    assert agent.image_ref == "myregistry/coordinator:v1.0.0"
    assert agent.resources.cpu_limit == "2"
    assert [(port.name, port.port) for port in agent.ports] == [("http", 8080), ("port-9090", 9090)]
    assert agent.health_check.port == 8080
    assert agent.scaling.custom_metrics[0].name == "active_tasks_per_pod"
    assert agent.scaling.custom_metrics[0].target_average_value == "5"
    assert agent.load_balancer.algorithm is LoadBalancerAlgorithm.LEAST_REQUEST
    # YAML numbers and booleans in env become the strings Kubernetes requires.
    assert agent.environment == {"AGENT_TYPE": "coordinator", "MAX_CONCURRENT_TASKS": "10", "DEBUG": "false"}


def test_every_field_has_a_description() -> None:
    missing = []

    def walk(model: type) -> None:
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
        for field in model.model_fields.values():
            for candidate in _models_in(field.annotation):
                walk(candidate)

    walk(SystemConfig)
    assert missing == []


def _models_in(annotation: Any) -> list[type]:
    from pydantic import BaseModel
    import typing

    found = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def test_defaults_are_safe() -> None:
    system = parse_system_config(with_agent())
    agent = system.agents[0]
    assert system.pod_security is PodSecurityLevel.RESTRICTED
    assert agent.service_account.automount_token is False
    assert agent.security.read_only_root_filesystem is True
    # The seed's 10%, rounded down by Kubernetes: no pod down during an update below 10 replicas.
    assert agent.rollout.max_unavailable == "10%" and agent.rollout.max_surge == "25%"
    assert agent.ports[0].protocol is Protocol.TCP


def test_ports_as_name_to_number_mapping() -> None:
    system = parse_system_config(with_agent(ports={"grpc": 9000, "metrics": 9090}))
    assert [(port.name, port.port) for port in system.agents[0].ports] == [("grpc", 9000), ("metrics", 9090)]


# --- one message per problem, naming the field and the fix --------------------------------------

@pytest.mark.parametrize("raw, expected", [
    (with_agent(agent_id="Research_Agent"),
     "agents[0].agent_id: 'Research_Agent' is not a valid agent id: use lowercase letters"),
    (with_agent(agent_id="9lives"), "agents[0].agent_id: '9lives' is not a valid agent id"),
    (with_agent(agent_id="a" * 51), "at most 50 characters"),
    (with_agent(resources={"cpu_request": "lots"}),
     "agents[0].resources.cpu_request: 'lots' is not a Kubernetes quantity"),
    (with_agent(resources={"memory_limit": "512m"}),
     "agents[0].resources.memory_limit: '512m' means 0.512 bytes"),
    (with_agent(resources={"cpu_request": "2", "cpu_limit": "1"}),
     "agents[0].resources.cpu_request: '2' is above cpu_limit '1'; lower the request or raise the limit"),
    (with_agent(resources={"memory_request": "1Gi", "memory_limit": "512Mi"}),
     "agents[0].resources.memory_request: '1Gi' is above memory_limit '512Mi'"),
    (with_agent(scaling={"min_replicas": 3, "max_replicas": 2, "initial_replicas": 3}),
     "agents[0].scaling.max_replicas: must be >= min_replicas (3)"),
    (with_agent(scaling={"min_replicas": 2, "max_replicas": 5, "initial_replicas": 1}),
     "agents[0].scaling.initial_replicas: must be between min_replicas (2) and max_replicas (5); got 1"),
    (with_agent(scaling={"min_replicas": 2, "max_replicas": 5, "initial_replicas": 9}),
     "agents[0].scaling.initial_replicas: must be between min_replicas (2) and max_replicas (5); got 9"),
    (with_agent(scaling={"target_cpu": None, "target_memory": None}),
     "agents[0].scaling: the autoscaler has no metric"),
    (with_agent(ports=[{"name": "http", "port": 70000}]),
     "agents[0].ports[0].port: must be less than or equal to 65535 (got 70000)"),
    (with_agent(ports=[{"name": "http", "port": 0}]), "agents[0].ports[0].port: must be greater than or equal to 1"),
    (with_agent(ports={"http": 8080, "web": 8080}), "agents[0].ports[1].port: 8080 is used by another port"),
    (with_agent(ports=[{"name": "http", "port": 80, "protocol": "tcp"}]),
     "agents[0].ports[0].protocol: must be one of 'TCP', 'UDP' or 'SCTP' (got 'tcp')"),
    (with_agent(service_type="Ingress"),
     "agents[0].service_type: must be one of 'ClusterIP', 'NodePort' or 'LoadBalancer' (got 'Ingress')"),
    (with_agent(load_balancer="FASTEST"), "agents[0].load_balancer.algorithm: must be one of 'ROUND_ROBIN'"),
    (with_agent(health_check={"port": "admin"}),
     "agents[0].health_check.port: no port named 'admin'; use one of: http, metrics or a port number"),
    (with_agent(health_check={"path": "health"}), "agents[0].health_check.path: 'health' must be an absolute"),
    (with_agent(image="ghcr.io/acme/agent:1.0"), "agents[0].image: 'ghcr.io/acme/agent:1.0' includes a tag"),
    (with_agent(image="GHCR.io/Acme/Agent"), "agents[0].image: 'GHCR.io/Acme/Agent' is not an image repository"),
    (with_agent(digest="sha256:123"), "agents[0].digest: 'sha256:123' is not an image digest"),
    (with_agent(talks_to=["agent-b"]),
     "agents[0].talks_to[0]: no agent has agent_id 'agent-b'; did you mean 'agent-a'? use one of: agent-a"),
    (with_agent(group="backend"), "agents[0].group: unknown group 'backend'; define it under `groups`"),
    (with_agent(rollout={"max_surge": 0, "max_unavailable": 0}),
     "agents[0].rollout.max_surge: max_surge and max_unavailable cannot both be 0"),
    (with_agent(rollout={"max_surge": "lots"}), "agents[0].rollout.max_surge: 'lots' must be a count such as 1"),
    (with_agent(rollout={"max_surge": [1]}),
     "agents[0].rollout.max_surge: must be a valid integer or a valid string (got [1])"),
    (with_agent(disruption={"max_unavailable": "150%"}),
     "agents[0].disruption.max_unavailable: '150%' must be a count such as 1 or a percentage from '0%' to '100%'"),
    (with_agent(health_check={"port": "Admin!"}), "agents[0].health_check.port: 'Admin!' is not a valid port name"),
    (with_agent(disruption={"min_available": 2, "max_unavailable": None}, scaling={"min_replicas": 2}),
     "agents[0].disruption.min_available: 2 leaves no pod evictable at 2 replica(s)"),
    (with_agent(disruption={"min_available": 1}), "agents[0].disruption: set exactly one of max_unavailable"),
    (with_agent(environment={"AGENT_ID": "x"}), "agents[0].environment.AGENT_ID: is set by the program"),
    (with_agent(environment={"1BAD": "x"}), "'1BAD' is not a valid environment variable name"),
    (with_agent(labels={"team": "a b"}), "agents[0].labels: label value 'a b' (key 'team') is invalid"),
    (with_agent(scheduling={"tolerations": [{"key": "gpu", "operator": "Exists", "value": "x"}]}),
     "agents[0].scheduling.tolerations[0].value: must be empty with operator Exists"),
    (with_agent(routing_rules=[{"name": "a", "timeout": "thirty seconds"}]),
     "agents[0].routing_rules[0].timeout: 'thirty seconds' is not a duration"),
    ({"namespace": "Agents", **with_agent()}, "namespace: 'Agents' is not a valid namespace name"),
    ({"agents": []}, "agents: needs at least 1 item; add one"),
    ({}, "agents: is required; add it"),
])
def test_invalid_config_names_the_field_and_the_fix(raw: dict[str, Any], expected: str) -> None:
    problems = problems_of(raw)
    assert any(expected in problem for problem in problems), problems


def test_field_name_typos_suggest_the_close_match() -> None:
    problems = problems_of(with_agent(scalling={"max_replicas": 3}))
    assert problems[0].startswith("agents[0].scalling: unknown field; did you mean 'scaling'?")
    nested = problems_of(with_agent(resources={"cpu_requests": "1"}))
    assert nested[0].startswith("agents[0].resources.cpu_requests: unknown field; did you mean 'cpu_request'?")
    top = problems_of({"agent": [], **with_agent()})
    assert top[0].startswith("agent: unknown field; did you mean 'agents'?")


def test_duplicate_agent_ids_point_at_the_second_one() -> None:
    raw = {"agents": [with_agent()["agents"][0], with_agent()["agents"][0]]}
    assert problems_of(raw) == ["agents[1].agent_id: 'agent-a' is already used by agents[0]; agent ids must be unique"]


def test_every_problem_is_reported_at_once() -> None:
    raw = {"agents": [
        {"agent_id": "a", "image": "x/a", "resources": {"cpu_request": "2", "cpu_limit": "1"},
         "talks_to": ["nobody"]},
        {"agent_id": "b", "image": "x/b", "scaling": {"min_replicas": 4, "max_replicas": 2}},
    ]}
    problems = problems_of(raw)
    assert len(problems) == 3
    assert {problem.split(":")[0] for problem in problems} == {
        "agents[0].resources.cpu_request", "agents[0].talks_to[0]", "agents[1].scaling.max_replicas"}


def test_field_errors_do_not_hide_other_agents_rules() -> None:
    raw = {"production": True, "agents": [
        {"agent_id": "a", "image": "x/a", "tag": "1", "scalling": {}},
        {"agent_id": "b", "image": "x/b", "tag": "latest", "resources": {"memory_request": "2Gi"}},
    ]}
    problems = problems_of(raw)
    assert problems[0].startswith("agents[0].scalling")
    assert "agents[1].resources.memory_request: '2Gi' is above memory_limit '1Gi'; lower the request or raise the " \
           "limit" in problems
    assert any(problem.startswith("agents[1].digest: is required when production is true") for problem in problems)


@pytest.mark.parametrize("tag", ["1.4.2", "latest", ""])
def test_production_requires_images_pinned_by_digest(tag: str) -> None:
    raw = {"production": True, "monitoring": {"enabled": False}, **with_agent(tag=tag)}
    [problem] = problems_of(raw)
    shown = f"ghcr.io/acme/agent:{tag}" if tag else "ghcr.io/acme/agent"
    assert problem.startswith("agents[0].digest: is required when production is true (a tag can be moved")
    assert f"`crane digest {shown}`" in problem
    # Outside production a tag is allowed; a digest satisfies production.
    parse_system_config(with_agent(tag=tag))
    parse_system_config({**raw, **with_agent(tag=tag, digest="sha256:" + "a" * 64)})


def test_group_namespaces_must_be_distinct() -> None:
    raw = {"namespace": "agents", "groups": {"a": {"namespace": "shared"}, "b": {"namespace": "shared"}},
           **with_agent()}
    assert problems_of(raw) == ["groups.b.namespace: 'shared' is already the namespace of group 'a'; "
                                "give each group its own namespace"]


def test_quota_too_small_for_minimum_replicas() -> None:
    raw = {"groups": {"team": {"quota": {"requests_cpu": "1", "pods": 2}}},
           **with_agent(group="team", resources={"cpu_request": "500m"},
                        scaling={"min_replicas": 3, "initial_replicas": 3})}
    problems = problems_of(raw)
    assert "groups.team.quota.pods: 2 is below the 3 pods its agents need at minimum replicas; raise it" in problems
    assert any(problem.startswith("groups.team.quota.requests_cpu: '1' is below the 1.5 cores") for problem in problems)


def test_not_a_mapping() -> None:
    assert problems_of(["agents"]) == ["must be a mapping with an `agents` list (got list)"]
