"""Rules that span several fields of the system config, each reported at the field to fix.

They run inside `SystemConfig` validation (after every field is valid on its own) and
collect every problem instead of stopping at the first, so one run shows the user all of
them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from .config_errors import ConfigProblem
from .quantities import cpu_cores, memory_bytes

if TYPE_CHECKING:
    from .config import AgentConfig, ResourceQuotaConfig, SystemConfig

# Environment variables the program sets on every agent from the downward API.
RESERVED_ENV = ("AGENT_ID", "AGENT_ROLE", "NAMESPACE", "POD_NAME", "POD_IP", "NODE_NAME")


def cross_field_problems(system: "SystemConfig") -> list[ConfigProblem]:
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
    return problems


def agent_problems(agent: "AgentConfig", where: str, production: bool) -> list[ConfigProblem]:
    """Problems within one agent; these need nothing from the rest of the system."""
    problems = [*_resource_problems(agent, where), *_scaling_problems(agent, where), *_port_problems(agent, where),
                *_workload_problems(agent, where), *_env_problems(agent, where), *_release_problems(agent, where)]
    if production:
        problems += _production_problems(agent, where)
    return problems


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def _agent_id_problems(system: "SystemConfig") -> Iterator[ConfigProblem]:
    from .monitoring_objects import SERVICE_ID

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


def _namespace_problems(system: "SystemConfig") -> Iterator[ConfigProblem]:
    owner = {system.namespace: "the main namespace"}
    for name in system.groups:
        namespace = system.group_namespace(name)
        if namespace in owner:
            yield ConfigProblem(f"groups.{name}.namespace",
                                f"'{namespace}' is already {owner[namespace]}; give each group its own namespace")
        else:
            owner[namespace] = f"the namespace of group '{name}'"


def _reference_problems(system: "SystemConfig", agent: "AgentConfig", where: str,
                        known_ids: list[str]) -> Iterator[ConfigProblem]:
    if agent.group is not None and agent.group not in system.groups:
        known = sorted(system.groups)
        yield ConfigProblem(f"{where}.group",
                            f"unknown group '{agent.group}'; {_suggest(agent.group, known)}"
                            f"define it under `groups` (defined: {', '.join(known) or 'none'})")
    for position, target in enumerate(agent.talks_to):
        if target not in known_ids:
            yield ConfigProblem(f"{where}.talks_to[{position}]",
                                f"no agent has agent_id '{target}'; {_suggest(target, known_ids)}"
                                f"use one of: {', '.join(known_ids)}")
    seen_rules: set[str] = set()
    for position, rule in enumerate(agent.routing_rules):
        if rule.name in seen_rules:
            yield ConfigProblem(f"{where}.routing_rules[{position}].name",
                                f"'{rule.name}' is used by another rule of this agent; rule names must be unique")
        seen_rules.add(rule.name)


def _resource_problems(agent: "AgentConfig", where: str) -> Iterator[ConfigProblem]:
    resources = agent.resources
    if resources.cpu_limit is not None and cpu_cores(resources.cpu_request) > cpu_cores(resources.cpu_limit):
        yield ConfigProblem(f"{where}.resources.cpu_request",
                            f"'{resources.cpu_request}' is above cpu_limit '{resources.cpu_limit}'; "
                            f"lower the request or raise the limit")
    if memory_bytes(resources.memory_request) > memory_bytes(resources.memory_limit):
        yield ConfigProblem(f"{where}.resources.memory_request",
                            f"'{resources.memory_request}' is above memory_limit '{resources.memory_limit}'; "
                            f"lower the request or raise the limit")


def _scaling_problems(agent: "AgentConfig", where: str) -> Iterator[ConfigProblem]:
    scaling = agent.scaling
    if not scaling.autoscaling:
        return
    if scaling.max_replicas < scaling.min_replicas:
        yield ConfigProblem(f"{where}.scaling.max_replicas",
                            f"must be >= min_replicas ({scaling.min_replicas})")
    elif not scaling.min_replicas <= scaling.initial_replicas <= scaling.max_replicas:
        yield ConfigProblem(f"{where}.scaling.initial_replicas",
                            f"must be between min_replicas ({scaling.min_replicas}) and "
                            f"max_replicas ({scaling.max_replicas}); got {scaling.initial_replicas}")
    if scaling.target_cpu is None and scaling.target_memory is None and not scaling.custom_metrics:
        yield ConfigProblem(f"{where}.scaling",
                            "the autoscaler has no metric; set target_cpu, target_memory or custom_metrics, "
                            "or set autoscaling: false")
    names = [metric.name for metric in scaling.custom_metrics]
    for position, name in enumerate(names):
        if name in names[:position]:
            yield ConfigProblem(f"{where}.scaling.custom_metrics[{position}].name",
                                f"'{name}' is listed twice; keep one target per metric")


def _port_problems(agent: "AgentConfig", where: str) -> Iterator[ConfigProblem]:
    names = [port.name for port in agent.ports]
    numbers = [port.port for port in agent.ports]
    for position, port in enumerate(agent.ports):
        if port.name in names[:position]:
            yield ConfigProblem(f"{where}.ports[{position}].name", f"'{port.name}' is used by another port")
        if port.port in numbers[:position]:
            yield ConfigProblem(f"{where}.ports[{position}].port", f"{port.port} is used by another port")
    if not agent.ports:
        yield ConfigProblem(f"{where}.ports", "needs at least one port (the probes and the Service use it)")
    probe_port = agent.health_check.port
    if isinstance(probe_port, str) and probe_port not in names:
        yield ConfigProblem(f"{where}.health_check.port",
                            f"no port named '{probe_port}'; {_suggest(probe_port, names)}"
                            f"use one of: {', '.join(names)} or a port number")


def _workload_problems(agent: "AgentConfig", where: str) -> Iterator[ConfigProblem]:
    rollout = agent.rollout
    if rollout.max_surge in (0, "0%") and rollout.max_unavailable in (0, "0%"):
        yield ConfigProblem(f"{where}.rollout.max_surge",
                            "max_surge and max_unavailable cannot both be 0 (the rollout could never progress); "
                            "set max_surge: 1")
    disruption = agent.disruption
    if disruption.enabled:
        if (disruption.max_unavailable is None) == (disruption.min_available is None):
            yield ConfigProblem(f"{where}.disruption",
                                "set exactly one of max_unavailable and min_available (set the other to null)")
        fewest = agent.scaling.min_replicas if agent.scaling.autoscaling else agent.scaling.initial_replicas
        if isinstance(disruption.min_available, int) and disruption.min_available >= fewest > 0:
            yield ConfigProblem(f"{where}.disruption.min_available",
                                f"{disruption.min_available} leaves no pod evictable at {fewest} replica(s), "
                                f"so node drains would hang; lower it or use max_unavailable: 1")
        if disruption.max_unavailable in (0, "0%"):
            yield ConfigProblem(f"{where}.disruption.max_unavailable",
                                "0 blocks every node drain; use at least 1")
    for position, toleration in enumerate(agent.scheduling.tolerations):
        if toleration.operator.value == "Exists" and toleration.value is not None:
            yield ConfigProblem(f"{where}.scheduling.tolerations[{position}].value",
                                "must be empty with operator Exists; remove it or use operator Equal")


def _env_problems(agent: "AgentConfig", where: str) -> Iterator[ConfigProblem]:
    for field in ("environment", "secret_environment"):
        for name in getattr(agent, field):
            if name in RESERVED_ENV:
                yield ConfigProblem(f"{where}.{field}.{name}",
                                    f"is set by the program for every agent ({', '.join(RESERVED_ENV)}); "
                                    f"choose another name")
    for name in agent.secret_environment:
        if name in agent.environment:
            yield ConfigProblem(f"{where}.secret_environment.{name}",
                                "is also set in `environment`; keep one of the two")


def _production_problems(agent: "AgentConfig", where: str) -> Iterator[ConfigProblem]:
    tags = {f"{where}.tag": agent.tag} if agent.blue_green is None and agent.digest is None else {}
    if agent.blue_green is not None:
        tags |= {f"{where}.blue_green.blue_tag": agent.blue_green.blue_tag,
                 f"{where}.blue_green.green_tag": agent.blue_green.green_tag}
    if agent.canary is not None:
        tags[f"{where}.canary.tag"] = agent.canary.tag
    for path, tag in tags.items():
        if tag in ("", "latest"):
            shown = "an empty tag" if tag == "" else "tag 'latest'"
            yield ConfigProblem(path, f"{shown} is not allowed when production is true; pin a version such as "
                                      f"'1.4.2'" + (" or set `digest`" if path.endswith("].tag") else ""))


def _release_problems(agent: "AgentConfig", where: str) -> Iterator[ConfigProblem]:
    """Canary / blue-green consistency, route weights and fault injection."""
    from .releases import subsets

    if agent.canary is not None and agent.blue_green is not None:
        yield ConfigProblem(f"{where}.canary", "an agent has either a canary or blue_green, not both; remove one")
        return
    if agent.canary is not None and agent.canary.tag == agent.tag and agent.digest is None:
        yield ConfigProblem(f"{where}.canary.tag", f"'{agent.canary.tag}' is the stable tag too; a canary needs "
                                                   f"the new version's tag")
    known = subsets(agent)
    for position, rule in enumerate(agent.routing_rules):
        path = f"{where}.routing_rules[{position}]"
        for index, part in enumerate(rule.route):
            if part.subset not in known:
                yield ConfigProblem(f"{path}.route[{index}].subset",
                                    f"'{part.subset}' is not a subset of this agent; use one of: {', '.join(known)}")
        if rule.route and sum(part.weight for part in rule.route) != 100:
            yield ConfigProblem(f"{path}.route", f"weights add up to {sum(part.weight for part in rule.route)}; "
                                                 f"they must add up to 100")
        if rule.fault is not None and (rule.timeout is not None or rule.retries is not None):
            yield ConfigProblem(f"{path}.fault", "Istio ignores timeout and retries on a route with fault injection; "
                                                 "put the fault on a rule of its own")
        if rule.fault is not None and rule.fault.delay is None and rule.fault.abort is None:
            yield ConfigProblem(f"{path}.fault", "set delay or abort (or remove fault)")


def _mesh_problems(system: "SystemConfig") -> Iterator[ConfigProblem]:
    """Mesh settings that can't work together, and releases that need the mesh."""
    from .traffic_config import ReleaseController

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


def _quota_problems(system: "SystemConfig") -> Iterator[ConfigProblem]:
    """A namespace whose quota can't hold its agents' minimum replicas would never start them."""
    quotas: dict[str | None, tuple[str, "ResourceQuotaConfig | None"]] = {None: ("quota", system.quota)}
    quotas |= {name: (f"groups.{name}.quota", group.quota) for name, group in system.groups.items()}
    for group, (path, quota) in quotas.items():
        agents = [agent for agent in system.agents if agent.group == group]
        if quota is None or not agents:
            continue
        pods = sum(_fewest_replicas(agent) for agent in agents)
        cpu = sum((cpu_cores(agent.resources.cpu_request) * _fewest_replicas(agent) for agent in agents), Decimal(0))
        memory = sum((memory_bytes(agent.resources.memory_request) * _fewest_replicas(agent) for agent in agents),
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


def _fewest_replicas(agent: "AgentConfig") -> int:
    return agent.scaling.min_replicas if agent.scaling.autoscaling else agent.scaling.initial_replicas


def _mebibytes(amount: Decimal) -> str:
    return f"{(amount / 2**20).quantize(Decimal(1))}Mi"
