"""AgentDeployment: every agent of the system as Kubernetes workloads, plus their namespaces and what the
agents share: the Kafka topics, each agent's Kafka user, KEDA scaling, the CloudNativePG stores.

Registers exactly what the pure builders return (kubernetes/, kafka/, keda/, data/), so `pulumi up`, the
offline render and the schema tests all see the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .config import releases, require_checked
from .config.agent import AgentConfig
from .config.lookups import service_host
from .config.releases import STABLE_TRACK
from .config.system import SystemConfig
from .config.traffic import ReleaseController
from .config.backbone import uses_kafka
from .data import objects as data
from .kafka import objects as kafka
from .keda import objects as keda
from .kubernetes import namespaces, workload
from .registration import register_object, registered_label


@dataclass(frozen=True)
class AgentDeploymentArgs:
    """Inputs of AgentDeployment."""

    system: SystemConfig
    """The validated system config (from `parse_system_config`); every agent and group in it is deployed."""

    def __post_init__(self) -> None:
        require_checked(self.system)


class AgentDeployment(pulumi.ComponentResource):
    """Namespaces (with quota and limits); per agent ServiceAccount, Deployment, Service, HPA or KEDA
    ScaledObject, PDB and KafkaUser; the system's KafkaTopics and CloudNativePG Clusters."""

    namespaces: pulumi.Output[list[str]]
    """Names of the namespaces the agents run in (created here unless `create_namespace` is false)."""

    shared: pulumi.Output[list[str]]
    """`Kind namespace/name` of the KafkaTopics, CloudNativePG Clusters and their NetworkPolicies."""

    agents: pulumi.Output[dict[str, dict[str, Any]]]
    """Per agent id: namespace, service_account, deployment (the serving one), deployments (all tracks),
    service, hpa, pdb, kafka_user, scaled_object (names; null when not created) and service_host, the DNS name
    other agents call."""

    def __init__(self, name: str, args: AgentDeploymentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("multi-agent-system:agents:AgentDeployment", name, None, opts)
        system = args.system
        self._name = name
        self._system = system
        self._namespace_resources: dict[str, pulumi.Resource] = {}

        namespace_names = self._namespaces()
        self.namespaces = pulumi.Output.all(*namespace_names.values()).apply(list)
        self.shared = pulumi.Output.all(*self._shared())
        self.agents = pulumi.Output.all(**{
            agent.agent_id: self._agent(agent, namespace_names[system.agent_namespace(agent)])
            for agent in system.agents})
        self.register_outputs({"namespaces": self.namespaces, "agents": self.agents, "shared": self.shared})

    def _shared(self) -> list[pulumi.Output[str]]:
        """The Kafka topics and the CloudNativePG stores (with the NetworkPolicy admitting their users)."""
        system = self._system
        objects = []
        if system.messaging.kafka is not None:
            objects += [kafka.kafka_topic(system, topic) for topic in system.messaging.kafka.topics]
        for store in system.data.stores:
            if store.cloudnative_pg is not None:
                objects += [data.cnpg_cluster(system, store), data.store_network_policy(system, store)]
        def waits(obj: dict[str, Any]) -> list[pulumi.Resource]:  # a namespace this component creates, first
            created = self._namespace_resources.get(obj["metadata"]["namespace"])
            return [created] if created is not None else []
        return [registered_label(register_object(f"{self._name}-{obj['kind'].lower()}-{obj['metadata']['namespace']}-"
                                                 f"{obj['metadata']['name']}", obj, self._child(waits(obj))), obj)
                for obj in objects]

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
                               self._child([deployments[0]])) if first.autoscaled and agent.scaling.hpa else None)
        kafka_user = None
        if system.messaging.kafka is not None and uses_kafka(agent):
            users_ns = self._namespace_resources.get(system.messaging.kafka.user_namespace)
            kafka_user = register_object(f"{role}-kafka-user", kafka.kafka_user(system, agent),
                                         self._child([users_ns] if users_ns is not None else []))
        scaled = None
        if agent.scaling.event_driven is not None:
            waits = [deployments[0]]
            if agent.scaling.event_driven.trigger == "kafka":
                waits.append(register_object(f"{role}-trigger-auth", keda.trigger_authentication(system, agent),
                                             self._child(in_namespace)))
            scaled = register_object(f"{role}-scaled-object",
                                     keda.scaled_object(system, agent, workload.deployment_name(agent, first.name)),
                                     self._child(waits))
        pdb = (register_object(f"{role}-pdb", workload.pod_disruption_budget(system, first.agent, first.name),
                               self._child(in_namespace)) if agent.disruption.enabled else None)

        def name_of(resource: pulumi.CustomResource | None) -> pulumi.Output[str | None]:
            if resource is None:
                return pulumi.Output.from_input(None)
            if isinstance(resource, k8s.apiextensions.CustomResource):  # untyped: metadata is a plain dict
                return resource.metadata.apply(lambda metadata: metadata["name"])  # type: ignore[attr-defined]
            return resource.metadata.name  # type: ignore[attr-defined]

        return pulumi.Output.all(
            namespace=namespace, service_account=name_of(account), deployment=name_of(deployments[0]),
            deployments=pulumi.Output.all(*(name_of(item) for item in deployments)),
            service=name_of(service), hpa=name_of(hpa), pdb=name_of(pdb), kafka_user=name_of(kafka_user),
            scaled_object=name_of(scaled),
            service_host=service_host(system, agent))
