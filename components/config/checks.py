"""Rules that span several fields of the system config, each reported at the field to fix.

`parse.py` runs them once every field is valid on its own; they collect every problem
instead of stopping at the first, so one run shows the user all of them. Rules within a
single agent are in `agent_checks.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from .agent import AgentConfig
from .backbone_checks import backbone_problems
from .agent_checks import (agent_problems, fewest_replicas, request_within_limit, suggest, undigested,
                           unreachable_target)
from .errors import ConfigProblem
from .monitoring import SERVICE_ID, SERVICE_ROLE
from .quantities import cpu_cores, memory_bytes
from .reserved_checks import generated_name_problems, namespace_problems
from .system import ResourceQuotaConfig, SystemConfig
from .traffic import ReleaseController


def cross_field_problems(system: SystemConfig) -> list[ConfigProblem]:
    """Every cross-field problem of a field-wise valid config, in config order."""
    problems = list(_agent_id_problems(system))
    problems += _namespace_problems(system)
    problems += namespace_problems(system)
    known_ids = list(dict.fromkeys(agent.agent_id for agent in system.agents))
    for index, agent in enumerate(system.agents):
        where = f"agents[{index}]"
        problems += _reference_problems(system, agent, where, known_ids)
        problems += agent_problems(agent, where, system.production)
    problems += generated_name_problems(system)
    problems += _quota_problems(system)
    problems += _limit_range_problems(system)
    problems += _mesh_problems(system)
    problems += _monitoring_problems(system)
    problems += backbone_problems(system)
    problems += _region_problems(system)
    return problems


def _region_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    region = system.region
    if region is None:
        return
    if region.routing.value == "latency-based":
        yield ConfigProblem("region.routing", "latency-based cannot be expressed in Istio (Envoy balances on load, "
                                              "not on measured latency between regions); use geographic (nearest "
                                              "locality first) and latency-based DNS in front of the regions' "
                                              "ingress gateways")
    if region.routing.value == "weighted":
        total = sum(region.weights.values())
        if total != 100 or any(weight < 0 for weight in region.weights.values()):
            shown = ", ".join(f"{name}: {weight}" for name, weight in region.weights.items())
            yield ConfigProblem("region.weights", f"weights sum to {total}, not 100 ({shown}); adjust them (none "
                                                  f"negative)")
    if region.mode.value == "active-passive" and region.failover_to is None:
        yield ConfigProblem("region.failover_to", "mode: active-passive needs the regions to fail over to, in order")
    shaped = region.routing.value == "weighted" or region.mode.value == "active-passive"
    if shaped and not system.mesh.enabled:
        where = "region.routing" if region.routing.value == "weighted" else "region.mode"
        yield ConfigProblem(where, "spreading calls across regions is Istio's locality load balancing; set "
                                   "mesh.enabled: true (or routing: geographic, active-active without a mesh)")
    if region.failover_to == region.name:
        yield ConfigProblem("region.failover_to", f"'{region.failover_to}' is this region; name another one")
    if region.routing.value == "weighted" and region.mode.value == "active-passive":
        yield ConfigProblem("region.mode", "Istio applies either weights (distribute) or failover, not both; use "
                                           "routing: geographic for an active-passive region")
    if region.routing.value == "weighted" and region.name not in region.weights:
        yield ConfigProblem("region.weights", f"this region ({region.name}) has no weight; list it (0 sends all "
                                              f"its traffic elsewhere)")
    if system.mesh.enabled:
        for index, agent in enumerate(system.agents):
            if agent.canary is not None and agent.canary.controller is ReleaseController.FLAGGER:
                yield ConfigProblem(f"agents[{index}].canary.controller", "Flagger writes this agent's traffic "
                                                                          "policy, without the region's locality "
                                                                          "load balancing; use the pulumi "
                                                                          "controller in region stacks")
            if agent.traffic.outlier_detection is None:
                yield ConfigProblem(f"agents[{index}].traffic.outlier_detection",
                                    "locality load balancing across regions (region) only moves traffic away from "
                                    "endpoints outlier detection ejects; keep outlier_detection (the default) on")


def _agent_id_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    first_seen: dict[str, int] = {}
    for index, agent in enumerate(system.agents):
        if agent.agent_id == SERVICE_ID and system.monitoring.enabled:
            yield ConfigProblem(f"agents[{index}].agent_id", f"'{SERVICE_ID}' is the monitoring service's name; "
                                                             f"choose another agent id")
        if agent.role == SERVICE_ROLE and system.monitoring.enabled:
            yield ConfigProblem(f"agents[{index}].role", f"'{SERVICE_ROLE}' is the monitoring service's role, "
                                                         f"which Prometheus does not scrape as an agent; choose "
                                                         f"another role")
        if agent.agent_id in first_seen:
            yield ConfigProblem(f"agents[{index}].agent_id",
                                f"'{agent.agent_id}' is already used by agents[{first_seen[agent.agent_id]}]; "
                                f"agent ids must be unique")
        else:
            first_seen[agent.agent_id] = index


def _namespace_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    owner = {system.namespace: "the main namespace"}
    for name in system.groups:
        namespace = system.group_namespace(name)
        if namespace in owner:
            yield ConfigProblem(f"groups.{name}.namespace",
                                f"'{namespace}' is already {owner[namespace]}; give each group its own namespace")
        else:
            owner[namespace] = f"the namespace of group '{name}'"


def _reference_problems(system: SystemConfig, agent: AgentConfig, where: str,
                        known_ids: list[str]) -> Iterator[ConfigProblem]:
    if agent.group is not None and agent.group not in system.groups:
        known = sorted(system.groups)
        yield ConfigProblem(f"{where}.group",
                            f"unknown group '{agent.group}'; {suggest(agent.group, known)}"
                            f"define it under `groups` (defined: {', '.join(known) or 'none'})")
    for position, target in enumerate(agent.talks_to):
        if target not in known_ids:
            yield ConfigProblem(f"{where}.talks_to[{position}]",
                                f"no agent has agent_id '{target}'; {suggest(target, known_ids)}"
                                f"use one of: {', '.join(known_ids)}")
    seen_rules: set[str] = set()
    for position, rule in enumerate(agent.routing_rules):
        if rule.name in seen_rules:
            yield ConfigProblem(f"{where}.routing_rules[{position}].name",
                                f"'{rule.name}' is used by another rule of this agent; rule names must be unique")
        seen_rules.add(rule.name)


def _mesh_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    """Mesh settings that can't work together, and releases that need the mesh."""
    mesh = system.mesh
    if mesh.enabled and not mesh.istio_cni and system.pod_security.value != "privileged":
        yield ConfigProblem("mesh.istio_cni", f"without Istio CNI the sidecar's init container needs NET_ADMIN, "
                                              f"which pod_security '{system.pod_security.value}' forbids; install "
                                              f"Istio CNI (and keep istio_cni: true) or set pod_security: privileged")
    if system.production and not mesh.network_policies:
        yield ConfigProblem("mesh.network_policies", "production keeps the agents' NetworkPolicies (default deny "
                                                      "and the call graph; the policy pack requires every workload "
                                                      "isolated); set it to true")
    if mesh.enabled and system.production and mesh.mtls_mode.value != "STRICT":
        yield ConfigProblem("mesh.mtls_mode", f"'{mesh.mtls_mode.value}' accepts plaintext from any pod in the "
                                              f"cluster, which production refuses; set STRICT (metrics ports keep "
                                              f"their plaintext exception: mesh.metrics_plaintext)")
    names = [api.name for api in mesh.external_apis]
    for position, name in enumerate(names):
        if name in names[:position]:
            yield ConfigProblem(f"mesh.external_apis[{position}].name", f"'{name}' is used twice")
    for index, agent in enumerate(system.agents):
        if mesh.enabled or agent.canary is None:
            continue
        if agent.canary.controller is not ReleaseController.FLAGGER:
            yield ConfigProblem(f"agents[{index}].canary", "canary weights are applied by Istio; set mesh.enabled: "
                                                           "true (or use blue_green, which works without a mesh)")
    # Routing rules without the mesh are accepted (seed configs carry them) and take effect once it is enabled.
    for index, agent in enumerate(system.agents):
        if agent.routing_rules and agent.canary and agent.canary.controller is ReleaseController.FLAGGER:
            yield ConfigProblem(f"agents[{index}].routing_rules", "with canary.controller flagger, Flagger writes "
                                                                  "the VirtualService; remove routing_rules")


def _quota_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    """A namespace whose quota can't hold its agents' minimum replicas would never start them."""
    quotas: dict[str | None, tuple[str, ResourceQuotaConfig | None]] = {None: ("quota", system.quota)}
    quotas |= {name: (f"groups.{name}.quota", group.quota) for name, group in system.groups.items()}
    for group, (path, quota) in quotas.items():
        agents = [agent for agent in system.agents if agent.group == group]
        if quota is None or not agents:
            continue
        pods = sum(fewest_replicas(agent) for agent in agents)
        cpu = sum((cpu_cores(agent.resources.cpu_request) * fewest_replicas(agent) for agent in agents), Decimal(0))
        memory = sum((memory_bytes(agent.resources.memory_request) * fewest_replicas(agent) for agent in agents),
                     Decimal(0))
        if quota.pods is not None and pods > quota.pods:
            yield ConfigProblem(f"{path}.pods", f"{quota.pods} is below the {pods} pods its agents need at minimum "
                                                f"replicas; raise it")
        if quota.requests_cpu is not None and cpu > cpu_cores(quota.requests_cpu):
            yield ConfigProblem(f"{path}.requests_cpu",
                                f"'{quota.requests_cpu}' is below the {cpu.normalize()} cores its agents request at "
                                f"minimum replicas; raise it")
        if quota.requests_memory is not None and memory > memory_bytes(quota.requests_memory):
            yield ConfigProblem(f"{path}.requests_memory",
                                f"'{quota.requests_memory}' is below the {_mebibytes(memory)} its agents request at "
                                f"minimum replicas; raise it")


def _limit_range_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    """The LimitRange of an agent's namespace caps its limits and fills in a missing CPU limit.

    A limit above the range's maximum, or a default limit below the request, makes the API
    server refuse every pod of the agent; a default limit also bounds what the HPA can see.
    """
    for index, agent in enumerate(system.agents):
        if agent.group is not None and agent.group not in system.groups:
            continue  # an unknown group is reported on its own
        limits = system.limit_range if agent.group is None else system.groups[agent.group].limit_range
        if limits is None:
            continue
        where, resources = f"agents[{index}]", agent.resources
        cpu_limit = resources.cpu_limit
        if cpu_limit is None:
            cpu_limit = limits.default_cpu_limit
            if cpu_cores(resources.cpu_request) > cpu_cores(cpu_limit):
                yield ConfigProblem(f"{where}.resources.cpu_limit",
                                    f"null takes the namespace's LimitRange default '{cpu_limit}', which is below "
                                    f"cpu_request '{resources.cpu_request}', so every pod would be refused; set "
                                    f"cpu_limit")
            elif agent.scaling.hpa:
                yield from unreachable_target(where, "cpu", agent.scaling.target_cpu, resources.cpu_request,
                                              cpu_limit, cpu_cores, " (the namespace's LimitRange default)")
        for kind, limit, maximum, amount in (("cpu", cpu_limit, limits.max_cpu, cpu_cores),
                                             ("memory", resources.memory_limit, limits.max_memory, memory_bytes)):
            if maximum is not None and amount(limit) > amount(maximum):
                yield ConfigProblem(f"{where}.resources.{kind}_limit",
                                    f"'{limit}' is above the namespace's LimitRange max_{kind} '{maximum}', so every "
                                    f"pod would be refused; lower it or raise the LimitRange's max_{kind}")


def _monitoring_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    """The monitoring pod is a workload like the agents: same resource and image rules."""
    if not system.monitoring.enabled:
        return
    scrape_port, metrics_port = system.monitoring.scrape.port, system.mesh.metrics_port_name
    if system.monitoring.prometheus_operator and scrape_port != metrics_port and (
            system.mesh.enabled or system.mesh.network_policies):
        # The NetworkPolicies (and the mesh's mTLS exception) open mesh.metrics_port_name only.
        yield ConfigProblem("monitoring.scrape.port", f"'{scrape_port}' differs from mesh.metrics_port_name "
                                                      f"'{metrics_port}', the port the network policies open to "
                                                      f"Prometheus; set both to the same port name")
    escalation = system.monitoring.escalation
    if escalation is not None:
        names = [receiver.name for receiver in system.monitoring.receivers]
        for field in escalation.receiver_fields():
            name = getattr(escalation, field)
            if name not in names:
                yield ConfigProblem(f"monitoring.escalation.{field}", f"'{name}' is not a receiver; "
                                                                      f"{suggest(name, names)}receivers: "
                                                                      f"{', '.join(names) or 'none'}")
    pod = system.monitoring.service
    yield from request_within_limit("monitoring.service", "cpu", pod.cpu_request, pod.cpu_limit, cpu_cores)
    yield from request_within_limit("monitoring.service", "memory", pod.memory_request, pod.memory_limit,
                                    memory_bytes)
    if system.production:
        yield from undigested("monitoring.service.digest", pod.digest, pod.image, pod.tag)


def _mebibytes(amount: Decimal) -> str:
    return f"{(amount / 2**20).quantize(Decimal(1))}Mi"
