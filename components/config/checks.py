"""Rules that span several fields of the system config, each reported at the field to fix.

`parse.py` runs them once every field is valid on its own; they collect every problem
instead of stopping at the first, so one run shows the user all of them. Rules within a
single agent are in `agent_checks.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from .agent import AgentConfig
from .agent_checks import agent_problems, fewest_replicas, request_within_limit, suggest, unpinned_tag
from .errors import ConfigProblem
from .monitoring import SERVICE_ID
from .quantities import cpu_cores, memory_bytes
from .system import ResourceQuotaConfig, SystemConfig
from .traffic import ReleaseController


def cross_field_problems(system: SystemConfig) -> list[ConfigProblem]:
    """Every cross-field problem of a field-wise valid config, in config order."""
    problems = list(_agent_id_problems(system))
    problems += _namespace_problems(system)
    known_ids = list(dict.fromkeys(agent.agent_id for agent in system.agents))
    for index, agent in enumerate(system.agents):
        where = f"agents[{index}]"
        problems += _reference_problems(system, agent, where, known_ids)
        problems += agent_problems(agent, where, system.production)
    problems += _quota_problems(system)
    problems += _mesh_problems(system)
    problems += _monitoring_problems(system)
    return problems


def _agent_id_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    first_seen: dict[str, int] = {}
    for index, agent in enumerate(system.agents):
        if agent.agent_id == SERVICE_ID and system.monitoring.enabled:
            yield ConfigProblem(f"agents[{index}].agent_id", f"'{SERVICE_ID}' is the monitoring service's name; "
                                                             f"choose another agent id")
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


def _monitoring_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    """The monitoring pod is a workload like the agents: same resource and image rules."""
    if not system.monitoring.enabled:
        return
    scrape_port = system.monitoring.scrape.port
    if system.monitoring.prometheus_operator and not any(
            port.name == scrape_port for agent in system.agents for port in agent.ports):
        # The ServiceMonitor selects Service ports by name: it would scrape no agent at all.
        names = sorted({port.name for agent in system.agents for port in agent.ports})
        yield ConfigProblem("monitoring.scrape.port", f"no agent has a port named '{scrape_port}'; "
                                                      f"{suggest(scrape_port, names)}use one of: {', '.join(names)}")
    pod = system.monitoring.service
    yield from request_within_limit("monitoring.service", "cpu", pod.cpu_request, pod.cpu_limit, cpu_cores)
    yield from request_within_limit("monitoring.service", "memory", pod.memory_request, pod.memory_limit,
                                    memory_bytes)
    if system.production:
        yield from unpinned_tag("monitoring.service.tag", pod.tag)


def _mebibytes(amount: Decimal) -> str:
    return f"{(amount / 2**20).quantize(Decimal(1))}Mi"
