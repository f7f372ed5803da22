"""AgentMesh under Pulumi mocks: what it registers and parents, its outputs, and the canary controller hand-offs."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pulumi

from components.agent_mesh import AgentMesh, AgentMeshArgs
from components.config import parse_system_config
from components.render.mock_runtime import RecordingMonitor

from ..mesh_system import BASE


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


def test_flagger_hand_off(mocks: Callable[..., RecordingMonitor]) -> None:
    raw = copy.deepcopy(BASE)
    raw["agents"][1]["canary"]["controller"] = "flagger"
    raw["agents"][1]["routing_rules"] = []
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
