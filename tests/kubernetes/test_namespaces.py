"""Namespace builders: pod security labels, ResourceQuota and LimitRange of a group namespace."""

from __future__ import annotations

from typing import Any

from components.config import parse_system_config
from components.kubernetes import namespaces


def test_namespace_enforces_pod_security(system: Any) -> None:
    labels = namespaces.namespace(system, "multi-agent")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_quota_and_limit_range() -> None:
    system = parse_system_config({"groups": {"team": {"limit_range": {"max_cpu": "2"}}},
                                  "agents": [{"agent_id": "a", "image": "x/a", "group": "team"}]})
    group = system.groups["team"]
    quota = namespaces.resource_quota(system, "agents-team", group.quota)
    assert quota["metadata"]["namespace"] == "agents-team"
    assert quota["spec"]["hard"] == {"requests.cpu": "8", "requests.memory": "16Gi", "limits.cpu": "16",
                                     "limits.memory": "32Gi", "pods": "100"}
    limits = namespaces.limit_range(system, "agents-team", group.limit_range)["spec"]["limits"][0]
    assert limits["defaultRequest"] == {"cpu": "100m", "memory": "128Mi"}
    assert limits["max"] == {"cpu": "2"}
    assert system.agent_namespace(system.agents[0]) == "agents-team"
