"""AgentMesh: the system's Istio objects and NetworkPolicies (traffic, releases, zero trust).

Registers what the builders in istio/ and kubernetes/network_policies.py return, after
AgentDeployment (the namespaces and workloads must exist first). With `mesh.enabled: false`
only the NetworkPolicies remain, so the declared call graph holds without a mesh too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .config import releases, require_checked
from .config.agent import AgentConfig
from .config.lookups import agent_namespaces, agents_by_namespace
from .config.system import SystemConfig
from .config.traffic import ReleaseController
from .istio import monitoring, security, traffic
from .kubernetes.network_policies import network_policies
from .registration import register_object, registered_label


@dataclass(frozen=True)
class AgentMeshArgs:
    """Inputs of AgentMesh."""

    system: SystemConfig
    """The validated system config; `mesh` says whether Istio objects are created at all."""

    depends_on: list[pulumi.Resource]
    """Resources every mesh object waits for (the AgentDeployment, whose namespaces and workloads they name)."""

    def __post_init__(self) -> None:
        require_checked(self.system)


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
        routed: list[pulumi.Output[str]] = []
        policies: list[pulumi.Output[str]] = []
        if system.mesh.enabled:
            for agent in system.agents:
                routed += self._traffic(agent)
        for namespace, agents in agents_by_namespace(system).items():
            policies += self._zero_trust(namespace, agents)
        self.traffic = pulumi.Output.all(*routed).apply(list)
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
            return [self._register(f"{agent_id}-canary", traffic.flagger_canary(system, agent, autoscaled))]
        # Argo Rollouts rewrites the route weights and the subsets' labels: leave them to it.
        handed_off = release is ReleaseController.ARGO_ROLLOUTS
        return [self._register(f"{agent_id}-virtual-service", traffic.virtual_service(system, agent),
                               ["spec.http"] if handed_off else None),
                self._register(f"{agent_id}-destination-rule", traffic.destination_rule(system, agent),
                               ["spec.subsets"] if handed_off else None)]

    def _zero_trust(self, namespace: str, agents: list[AgentConfig]) -> list[pulumi.Output[str]]:
        system = self._system
        objects = []
        if system.mesh.enabled:
            objects += security.peer_authentications(system, namespace, agents)
            objects += security.authorization_policies(system, namespace, agents)
            objects.append(security.sidecar(system, namespace, agents))
            objects += security.service_entries(system, namespace, agents)
        if system.mesh.network_policies:
            objects += network_policies(system, namespace, agents)
        if system.mesh.enabled and system.monitoring.enabled and namespace == agent_namespaces(system)[0]:
            # Once per system: the monitoring pod's own zero trust in the mesh, wherever it runs.
            objects += [monitoring.monitoring_peer_authentication(system),
                        monitoring.monitoring_authorization_policy(system)]
        return [self._register(f"{obj['metadata']['namespace']}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj)
                for obj in objects]
