"""AgentDeployment: every agent of the system as Kubernetes workloads, plus their namespaces.

Registers exactly what the pure builders return (kubernetes/namespaces.py, workload.py), so
`pulumi up`, the offline render and the schema tests all see the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from .config import releases, require_checked
from .config.agent import AgentConfig
from .config.lookups import service_host
from .config.releases import STABLE_TRACK
from .config.system import SystemConfig
from .config.traffic import ReleaseController
from .kubernetes import namespaces, workload
from .registration import register_object


@dataclass(frozen=True)
class AgentDeploymentArgs:
    """Inputs of AgentDeployment."""

    system: SystemConfig
    """The validated system config (from `parse_system_config`); every agent and group in it is deployed."""

    def __post_init__(self) -> None:
        require_checked(self.system)


class AgentDeployment(pulumi.ComponentResource):
    """Namespaces (with quota and limits) and, per agent: ServiceAccount, Deployment, Service, HPA, PDB."""

    namespaces: pulumi.Output[list[str]]
    """Names of the namespaces the agents run in (created here unless `create_namespace` is false)."""

    agents: pulumi.Output[dict[str, dict[str, Any]]]
    """Per agent id: namespace, service_account, deployment (the serving one), deployments (all tracks),
    service, hpa, pdb (names; null when not created) and service_host, the DNS name other agents call."""

    def __init__(self, name: str, args: AgentDeploymentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("multi-agent-system:agents:AgentDeployment", name, None, opts)
        system = args.system
        self._name = name
        self._system = system
        self._namespace_resources: dict[str, pulumi.Resource] = {}

        namespace_names = self._namespaces()
        self.namespaces = pulumi.Output.all(*namespace_names.values()).apply(list)
        self.agents = pulumi.Output.all(**{
            agent.agent_id: self._agent(agent, namespace_names[system.agent_namespace(agent)])
            for agent in system.agents})
        self.register_outputs({"namespaces": self.namespaces, "agents": self.agents})

    def _child(self, depends_on: list[pulumi.Resource] | None = None,
               ignore_changes: list[str] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on or [], ignore_changes=ignore_changes)

    def _namespaces(self) -> dict[str, pulumi.Output[str]]:
        """Create the main namespace (if an agent has no group) and every group's namespace.

        Returns namespace -> name output, which resolves only once the namespace exists.
        """
        system = self._system
        in_use = {}
        if any(agent.group is None for agent in system.agents):
            in_use[system.namespace] = (None, system.quota, system.limit_range, {})
        for group, settings in system.groups.items():
            in_use[system.group_namespace(group)] = (group, settings.quota, settings.limit_range, settings.labels)
        names: dict[str, pulumi.Output[str]] = {}
        for ns, (group, quota, limits, labels) in in_use.items():
            role = f"{self._name}-{ns}"
            created: list[pulumi.Resource] = []
            if system.create_namespace:
                resource = register_object(f"{role}-namespace", namespaces.namespace(system, ns, labels), self._child())
                created.append(resource)
                self._namespace_resources[ns] = resource
                names[ns] = resource.metadata.name  # type: ignore[attr-defined]
            else:
                names[ns] = pulumi.Output.from_input(ns)
            if quota is not None:
                register_object(f"{role}-quota", namespaces.resource_quota(system, ns, quota), self._child(created))
            if limits is not None:
                register_object(f"{role}-limits", namespaces.limit_range(system, ns, limits), self._child(created))
        return names

    def _agent(self, agent: AgentConfig, namespace: pulumi.Output[str]) -> pulumi.Output[dict[str, Any]]:
        system = self._system
        role = f"{self._name}-{agent.agent_id}"
        ns_resource = self._namespace_resources.get(system.agent_namespace(agent))
        in_namespace = [ns_resource] if ns_resource is not None else []
        handed_off = releases.controller(agent) is not ReleaseController.PULUMI

        account = register_object(f"{role}-service-account", workload.service_account(system, agent),
                                  self._child(in_namespace))
        tracks = releases.tracks(agent)
        deployments = []
        for track in tracks:
            # The replica count is the HPA's (or the release controller's) after creation:
            # later `pulumi up`s must not reset it.
            ignore = ["spec.replicas"] if track.autoscaled or handed_off else None
            suffix = "" if track.name == STABLE_TRACK else f"-{track.name}"
            deployments.append(register_object(
                f"{role}-deployment{suffix}",
                workload.deployment(system, track.agent, track.name, track.replicas),
                self._child([*in_namespace, account], ignore_changes=ignore)))
        first = tracks[0]
        # Flagger creates and owns the agent's Services itself.
        service = (None if releases.controller(agent) is ReleaseController.FLAGGER else
                   register_object(f"{role}-service", workload.service(system, agent), self._child(in_namespace)))
        hpa = (register_object(f"{role}-hpa", workload.horizontal_pod_autoscaler(system, first.agent, first.name),
                               self._child([deployments[0]])) if first.autoscaled else None)
        pdb = (register_object(f"{role}-pdb", workload.pod_disruption_budget(system, first.agent, first.name),
                               self._child(in_namespace)) if agent.disruption.enabled else None)

        def name_of(resource: pulumi.CustomResource | None) -> pulumi.Output[str | None]:
            if resource is None:
                return pulumi.Output.from_input(None)
            return resource.metadata.name  # type: ignore[attr-defined]

        return pulumi.Output.all(
            namespace=namespace, service_account=name_of(account), deployment=name_of(deployments[0]),
            deployments=pulumi.Output.all(*(name_of(item) for item in deployments)),
            service=name_of(service), hpa=name_of(hpa), pdb=name_of(pdb),
            service_host=service_host(system, agent))
