"""AgentDeployment under Pulumi mocks: what it registers, with which options, and its outputs."""

from __future__ import annotations

from typing import Any, Callable

import pulumi
import pytest

from components.agent_deployment import AgentDeployment, AgentDeploymentArgs
from components.config import parse_system_config
from components.render.mock_runtime import RecordingMonitor

from ..conftest import SEED_SYSTEM

GROUPED = {
    "namespace": "agents",
    "groups": {"research": {"quota": {"requests_cpu": "4"}}},
    "agents": [
        {"agent_id": "planner", "image": "x/planner", "tag": "1"},
        {"agent_id": "searcher", "image": "x/searcher", "tag": "1", "group": "research",
         "scaling": {"autoscaling": False, "initial_replicas": 3}, "disruption": {"enabled": False}},
    ],
}


def deploy(mocks: Callable[..., RecordingMonitor], raw: dict[str, Any],
           check: Callable[[AgentDeployment], pulumi.Output[Any]]) -> RecordingMonitor:
    """Run AgentDeployment for `raw` under fresh mocks; `check` returns the Output to assert on."""
    monitor = mocks()

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        component = AgentDeployment("agents", AgentDeploymentArgs(parse_system_config(raw)))
        return check(component)

    program()
    return monitor


def by_type(monitor: RecordingMonitor) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for registration in monitor.registrations:
        found.setdefault(registration.type, []).append(registration.name)
    return {kind: sorted(names) for kind, names in found.items()}  # registration order is async


def test_registers_every_object_per_agent(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = deploy(mocks, SEED_SYSTEM, lambda component: component.urn)
    assert by_type(monitor) == {
        "multi-agent-system:agents:AgentDeployment": ["agents"],
        "kubernetes:core/v1:Namespace": ["agents-multi-agent-namespace"],
        "kubernetes:core/v1:ServiceAccount": ["agents-coordinator-agent-service-account",
                                              "agents-worker-agent-service-account"],
        "kubernetes:apps/v1:Deployment": ["agents-coordinator-agent-deployment", "agents-worker-agent-deployment"],
        "kubernetes:core/v1:Service": ["agents-coordinator-agent-service", "agents-worker-agent-service"],
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": ["agents-coordinator-agent-hpa",
                                                              "agents-worker-agent-hpa"],
        "kubernetes:policy/v1:PodDisruptionBudget": ["agents-coordinator-agent-pdb", "agents-worker-agent-pdb"],
    }


def test_children_are_parented_to_the_component(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = deploy(mocks, SEED_SYSTEM, lambda component: component.urn)
    component_urn = next(r for r in monitor.registrations if r.type.endswith("AgentDeployment"))
    children = [r for r in monitor.registrations if r.type.startswith("kubernetes:")]
    assert children and all(r.parent.endswith("AgentDeployment::agents") for r in children), \
        [(r.name, r.parent) for r in children]
    assert component_urn.parent.endswith("pulumi:pulumi:Stack::multi-agent-system-test")


def test_hpa_owns_replicas_after_creation(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = deploy(mocks, GROUPED, lambda component: component.urn)
    ignored = {r.name: r.ignore_changes for r in monitor.registrations if r.type == "kubernetes:apps/v1:Deployment"}
    # The autoscaled agent's replica count is left to its HPA; the fixed one stays managed.
    assert ignored == {"agents-planner-deployment": ["spec.replicas"], "agents-searcher-deployment": []}


def test_registered_inputs_are_the_builders_objects(mocks: Callable[..., RecordingMonitor]) -> None:
    from components.kubernetes import workload

    monitor = deploy(mocks, SEED_SYSTEM, lambda component: component.urn)
    system = parse_system_config(SEED_SYSTEM)
    registered = next(r.inputs for r in monitor.registrations if r.name == "agents-coordinator-agent-deployment")
    expected = workload.deployment(system, system.agents[0])
    # Mocks carry numbers as floats (protobuf Struct); values are otherwise identical.
    assert registered["spec"]["template"]["spec"]["containers"][0]["image"] == "myregistry/coordinator:v1.0.0"
    assert registered["spec"]["selector"] == expected["spec"]["selector"]
    assert registered["metadata"]["labels"] == expected["metadata"]["labels"]


def test_group_namespaces_get_quota_and_limits(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = deploy(mocks, GROUPED, lambda component: component.urn)
    inputs = {r.name: r.inputs for r in monitor.registrations}
    assert inputs["agents-agents-research-quota"]["metadata"]["namespace"] == "agents-research"
    assert inputs["agents-agents-research-quota"]["spec"]["hard"]["requests.cpu"] == "4"
    assert inputs["agents-agents-research-limits"]["kind"] == "LimitRange"
    assert "agents-agents-quota" not in inputs  # the main namespace has no quota unless configured
    found = by_type(monitor)
    assert found["kubernetes:core/v1:Namespace"] == ["agents-agents-namespace", "agents-agents-research-namespace"]
    assert "agents-searcher-hpa" not in found["kubernetes:autoscaling/v2:HorizontalPodAutoscaler"]
    assert "agents-searcher-pdb" not in found["kubernetes:policy/v1:PodDisruptionBudget"]


def test_existing_namespaces_are_not_created(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = deploy(mocks, {**SEED_SYSTEM, "create_namespace": False}, lambda component: component.urn)
    assert "kubernetes:core/v1:Namespace" not in by_type(monitor)


def test_outputs_name_the_objects(mocks: Callable[..., RecordingMonitor]) -> None:
    def check(component: AgentDeployment) -> pulumi.Output[Any]:
        def verify(args: list[Any]) -> None:
            urn, namespaces, agents = args
            assert namespaces == ["agents", "agents-research"], urn
            assert agents["planner"] == {
                "namespace": "agents", "service_account": "planner", "deployment": "planner",
                "deployments": ["planner"], "service": "planner",
                "hpa": "planner", "pdb": "planner", "kafka_user": None, "scaled_object": None,
                "service_host": "planner.agents.svc.cluster.local"}, urn
            assert agents["searcher"]["hpa"] is None and agents["searcher"]["pdb"] is None, urn
            assert agents["searcher"]["service_host"] == "searcher.agents-research.svc.cluster.local", urn

        return pulumi.Output.all(component.urn, component.namespaces, component.agents).apply(verify)

    deploy(mocks, GROUPED, check)


def test_a_failing_output_check_fails_the_test(mocks: Callable[..., RecordingMonitor]) -> None:
    """Guards the harness itself: an assertion inside apply() must surface, not pass silently."""
    def check(component: AgentDeployment) -> pulumi.Output[Any]:
        def verify(namespaces: list[str]) -> None:
            assert namespaces == ["not-this-one"]

        return component.namespaces.apply(verify)

    with pytest.raises(AssertionError):
        deploy(mocks, GROUPED, check)


def test_components_take_only_a_config_checked_as_a_whole() -> None:
    """A SystemConfig built directly skips the cross-field rules the builders rely on (e.g. known groups)."""
    from components.agent_mesh import AgentMeshArgs
    from components.config import SystemConfig
    from components.monitoring_stack import MonitoringStackArgs

    unchecked = SystemConfig.model_validate({"agents": [{"agent_id": "a", "image": "x/a", "group": "nope"}]})
    for args in (lambda: AgentDeploymentArgs(unchecked), lambda: AgentMeshArgs(unchecked, []),
                 lambda: MonitoringStackArgs(unchecked)):
        with pytest.raises(TypeError, match="parse_system_config"):
            args()
    AgentDeploymentArgs(parse_system_config({"agents": [{"agent_id": "a", "image": "x/a"}]}))
