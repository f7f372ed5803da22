"""Rules within one agent that span several of its fields, each reported at the field to fix.

They need nothing from the rest of the system, so `parse.py` can still run them for the
agents that parse while other agents have invalid fields (one run shows every problem).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

from .agent import AgentConfig
from .errors import ConfigProblem, closest_match
from .generated import EVERY_AGENT_ENV, TMP_DIR
from .quantities import cpu_cores, memory_bytes
from .releases import subsets

# Environment variables the program sets on every agent (identity, downward API, OpenTelemetry).
RESERVED_ENV = EVERY_AGENT_ENV
# The HPA adds replicas only when average utilisation exceeds its target by more than this
# share (kube-controller-manager's --horizontal-pod-autoscaler-tolerance, 0.1 by default).
HPA_TOLERANCE = Decimal("0.1")


def agent_problems(agent: AgentConfig, where: str, production: bool) -> list[ConfigProblem]:
    """Problems within one agent, in field order."""
    problems = [*_resource_problems(agent, where), *_scaling_problems(agent, where), *_port_problems(agent, where),
                *_workload_problems(agent, where), *_env_problems(agent, where), *_secret_file_problems(agent, where),
                *_token_problems(agent, where), *_release_problems(agent, where)]
    if production:
        problems += _production_problems(agent, where)
    return problems


def suggest(name: str, known: list[str]) -> str:
    """`did you mean 'x'? ` for the closest known name, or nothing."""
    close = closest_match(name, known)
    return f"did you mean '{close}'? " if close else ""


def request_within_limit(where: str, kind: str, request: str, limit: str | None,
                         amount: Callable[[str], Decimal]) -> Iterator[ConfigProblem]:
    """A container's `<kind>_request` must not exceed its `<kind>_limit` (the API server refuses it)."""
    if limit is not None and amount(request) > amount(limit):
        yield ConfigProblem(f"{where}.{kind}_request", f"'{request}' is above {kind}_limit '{limit}'; "
                                                       f"lower the request or raise the limit")


def undigested(path: str, digest: str | None, image: str, tag: str) -> Iterator[ConfigProblem]:
    """With production: true, every image is pinned by digest: a tag can be moved, a digest can't."""
    if digest is None:
        shown = f"{image}:{tag}" if tag else image
        yield ConfigProblem(path, f"is required when production is true (a tag can be moved to other content, "
                                  f"`latest` always is); set it to the digest of {shown}, e.g. from "
                                  f"`crane digest {shown}`")


def _resource_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
    resources = agent.resources
    yield from request_within_limit(f"{where}.resources", "cpu", resources.cpu_request, resources.cpu_limit,
                                    cpu_cores)
    yield from request_within_limit(f"{where}.resources", "memory", resources.memory_request,
                                    resources.memory_limit, memory_bytes)


def _scaling_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
    scaling = agent.scaling
    if scaling.event_driven is not None:
        if scaling.autoscaling and "autoscaling" in scaling.model_fields_set:
            yield ConfigProblem(f"{where}.scaling.autoscaling",
                                "KEDA (scaling.event_driven) creates and owns this Deployment's HPA; a second HPA "
                                "would fight it. Remove autoscaling: true, or event_driven")
        if scaling.max_replicas < scaling.min_replicas:
            yield ConfigProblem(f"{where}.scaling.max_replicas", f"must be >= min_replicas ({scaling.min_replicas})")
        return
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
    resources = agent.resources
    yield from unreachable_target(where, "cpu", scaling.target_cpu, resources.cpu_request, resources.cpu_limit,
                                  cpu_cores)
    yield from unreachable_target(where, "memory", scaling.target_memory, resources.memory_request,
                                  resources.memory_limit, memory_bytes)
    names = [metric.name for metric in scaling.custom_metrics]
    for position, name in enumerate(names):
        if name in names[:position]:
            yield ConfigProblem(f"{where}.scaling.custom_metrics[{position}].name",
                                f"'{name}' is listed twice; keep one target per metric")


def unreachable_target(where: str, kind: str, target: int | None, request: str, limit: str | None,
                       amount: Callable[[str], Decimal], limit_from: str = "") -> Iterator[ConfigProblem]:
    """A utilisation target the container's limit keeps usage from ever exceeding never scales out.

    Utilisation is a share of the request; usage stops at the limit (CPU is throttled, memory
    is OOM-killed), so the most the container can show is limit / request. The API server
    accepts such a target; the autoscaler then never adds a replica. (The HPA measures the
    agent's container alone: ContainerResource when a sidecar shares the pod.)
    """
    if target is None or limit is None or not 0 < amount(request) <= amount(limit):
        return  # no ceiling, or a request above the limit (reported on its own)
    ceiling = amount(limit) / amount(request) * 100
    if target * (1 + HPA_TOLERANCE) >= ceiling:
        shown = ceiling.quantize(Decimal("0.1")).normalize()
        highest = int((ceiling / (1 + HPA_TOLERANCE)).to_integral_value(rounding="ROUND_CEILING")) - 1
        yield ConfigProblem(f"{where}.scaling.target_{kind}",
                            f"{target}% of the {kind} request can never trigger a scale-out: {kind}_limit "
                            f"'{limit}'{limit_from} caps usage at {shown:f}% of the request '{request}', and the "
                            f"autoscaler acts only above the target plus its {HPA_TOLERANCE * 100:.0f}% tolerance; "
                            f"lower target_{kind} to {highest} or less, or raise resources.{kind}_limit")


def _port_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
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
                            f"no port named '{probe_port}'; {suggest(probe_port, names)}"
                            f"use one of: {', '.join(names)} or a port number")


def _workload_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
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
        fewest = fewest_replicas(agent)
        if isinstance(disruption.min_available, int) and disruption.min_available >= fewest > 0:
            yield ConfigProblem(f"{where}.disruption.min_available",
                                f"{disruption.min_available} leaves no pod evictable at {fewest} replica(s), "
                                f"so node drains would hang; lower it or use max_unavailable: 1")
        if disruption.min_available == "100%" and fewest > 0:
            yield ConfigProblem(f"{where}.disruption.min_available",
                                "'100%' leaves no pod evictable, so node drains would hang; lower it or use "
                                "max_unavailable: 1")
        if disruption.max_unavailable in (0, "0%"):
            yield ConfigProblem(f"{where}.disruption.max_unavailable",
                                "0 blocks every node drain; use at least 1")
    for position, toleration in enumerate(agent.scheduling.tolerations):
        if toleration.operator.value == "Exists" and toleration.value is not None:
            yield ConfigProblem(f"{where}.scheduling.tolerations[{position}].value",
                                "must be empty with operator Exists; remove it or use operator Equal")


def fewest_replicas(agent: AgentConfig) -> int:
    """Replicas the agent runs at least (the HPA's minimum, else the fixed count)."""
    scaling = agent.scaling
    if scaling.event_driven is not None:
        return 0 if scaling.event_driven.scale_to_zero else scaling.min_replicas
    return scaling.min_replicas if scaling.autoscaling else scaling.initial_replicas


def _token_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
    account = agent.service_account
    if account.automount_token and not account.automount_reason:
        yield ConfigProblem(f"{where}.service_account.automount_reason",
                            "is required with automount_token: say what the agent does with the Kubernetes API "
                            "(it is written on the Deployment, where scanners and reviewers read it)")


def _secret_file_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
    seen: set[str] = set()
    for index, file in enumerate(agent.secret_files):
        if file.path in seen:
            yield ConfigProblem(f"{where}.secret_files[{index}].path", f"{file.path!r} is mounted twice; give each "
                                                                      f"file its own path")
        if file.path == TMP_DIR or file.path.startswith(f"{TMP_DIR}/"):
            yield ConfigProblem(f"{where}.secret_files[{index}].path", "/tmp is the pod's writable scratch space; "
                                                                      "mount secrets elsewhere, e.g. /var/run/secrets/")
        if any(file.path.startswith(f"{other}/") or other.startswith(f"{file.path}/") for other in seen):
            yield ConfigProblem(f"{where}.secret_files[{index}].path", f"{file.path!r} lies inside, or contains, "
                                                                      f"another secret file's path; a file can't be "
                                                                      f"both")
        if file.key in (".", ".."):
            yield ConfigProblem(f"{where}.secret_files[{index}].key", f"{file.key!r} is not a Secret key")
        seen.add(file.path)


def _env_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
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


def _production_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
    """Every image of every track pinned by digest."""
    if agent.blue_green is None:
        yield from undigested(f"{where}.digest", agent.digest, agent.image, agent.tag)
    else:
        release = agent.blue_green
        yield from undigested(f"{where}.blue_green.blue_digest", release.blue_digest, agent.image, release.blue_tag)
        yield from undigested(f"{where}.blue_green.green_digest", release.green_digest, agent.image, release.green_tag)
    if agent.canary is not None:
        yield from undigested(f"{where}.canary.digest", agent.canary.digest, agent.image, agent.canary.tag)


def _release_problems(agent: AgentConfig, where: str) -> Iterator[ConfigProblem]:
    """Canary / blue-green consistency, route weights and fault injection."""
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
