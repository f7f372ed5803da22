"""AgentMesh: the system's Istio objects and NetworkPolicies (traffic, releases, zero trust).

Registers what the builders in mesh.py return, after AgentDeployment (the namespaces and
workloads must exist first). With `mesh.enabled: false` only the NetworkPolicies remain,
so the declared call graph holds without a mesh too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from . import mesh, releases
from .config import AgentConfig, SystemConfig
from .registration import register_object, registered_label
from .traffic_config import ReleaseController


@dataclass(frozen=True)
class AgentMeshArgs:
    """Inputs of AgentMesh: the validated system config and what the mesh must come after."""

    system: SystemConfig
    depends_on: list[pulumi.Resource]


class AgentMesh(pulumi.ComponentResource):
    """Per agent: VirtualService, DestinationRule (or a Flagger Canary); per namespace: PeerAuthentication,
    AuthorizationPolicy, Sidecar, ServiceEntry and NetworkPolicy."""

    traffic: pulumi.Output[list[str]]
    """`kind namespace/name` of the VirtualServices, DestinationRules and Flagger Canaries."""

    policies: pulumi.Output[list[str]]
    """`kind namespace/name` of the zero-trust objects (PeerAuthentication, AuthorizationPolicy, Sidecar,
    ServiceEntry, NetworkPolicy)."""

    def __init__(self, name: str, args: AgentMeshArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("multi-agent-system:mesh:AgentMesh", name, None, opts)
        self._name = name
        self._system = system = args.system
        self._after = list(args.depends_on)
        traffic: list[pulumi.Output[str]] = []
        policies: list[pulumi.Output[str]] = []
        if system.mesh.enabled:
            for agent in system.agents:
                traffic += self._traffic(agent)
        by_namespace: dict[str, list[AgentConfig]] = {}
        for agent in system.agents:
            by_namespace.setdefault(system.agent_namespace(agent), []).append(agent)
        for namespace, agents in by_namespace.items():
            policies += self._zero_trust(namespace, agents)
        self.traffic = pulumi.Output.all(*traffic).apply(list)
        self.policies = pulumi.Output.all(*policies).apply(list)
        self.register_outputs({"traffic": self.traffic, "policies": self.policies})

    def _register(self, role: str, obj: dict, ignore_changes: list[str] | None = None) -> pulumi.Output[str]:
        resource = register_object(f"{self._name}-{role}", obj, pulumi.ResourceOptions(
            parent=self, depends_on=self._after, ignore_changes=ignore_changes))
        return registered_label(resource, obj)

    def _traffic(self, agent: AgentConfig) -> list[pulumi.Output[str]]:
        system, agent_id = self._system, agent.agent_id
        release = releases.controller(agent)
        if release is ReleaseController.FLAGGER:
            autoscaled = releases.tracks(agent)[0].autoscaled
            return [self._register(f"{agent_id}-canary", mesh.flagger_canary(system, agent, autoscaled))]
        # Argo Rollouts rewrites the route weights and the subsets' labels: leave them to it.
        handed_off = release is ReleaseController.ARGO_ROLLOUTS
        return [self._register(f"{agent_id}-virtual-service", mesh.virtual_service(system, agent),
                               ["spec.http"] if handed_off else None),
                self._register(f"{agent_id}-destination-rule", mesh.destination_rule(system, agent),
                               ["spec.subsets"] if handed_off else None)]

    def _zero_trust(self, namespace: str, agents: list[AgentConfig]) -> list[pulumi.Output[str]]:
        system = self._system
        objects = []
        if system.mesh.enabled:
            objects += mesh.peer_authentications(system, namespace, agents)
            objects += mesh.authorization_policies(system, namespace, agents)
            objects.append(mesh.sidecar(system, namespace, agents))
            objects += mesh.service_entries(system, namespace)
        if system.mesh.network_policies:
            objects += mesh.network_policies(system, namespace, agents)
        return [self._register(f"{namespace}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj)
                for obj in objects]
