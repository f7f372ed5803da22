"""The agent part of the system config: one `AgentConfig` per agent and its sub-models.

Field names follow the seed's `agent_config` (`agent_id`, `image`, `tag`, `resources`,
`environment`, `ports`, `health_check`, `scaling`, `routing_rules`, `load_balancer`) and
accept its shorthands (`ports: [8080, 9090]`, `load_balancer: ROUND_ROBIN`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from .types import (
    AgentId,
    Cpu,
    EnvVars,
    ImageDigest,
    ImageRepository,
    ImageTag,
    IntOrPercent,
    Labels,
    Memory,
    Placement,
    PortName,
    PortNumber,
    Protocol,
    PullPolicy,
    ScalingPolicyType,
    SelectPolicy,
    ServiceType,
    StrictModel,
    TaintEffect,
    TolerationOperator,
)
from .messaging import EventDrivenScaling
from .traffic import BlueGreen, Canary, LoadBalancer, LoadBalancerField, RoutingRule, Traffic


class Port(StrictModel):
    """A port the agent's container listens on, exposed through its Service."""

    name: PortName = Field(description="Port name; Istio reads the protocol from a prefix such as 'http' or 'grpc'.")
    port: PortNumber = Field(description="Port number the Service exposes (and the container listens on).")
    target_port: PortNumber | None = Field(None, description="Container port, when it differs from `port`.")
    protocol: Protocol = Field(Protocol.TCP, description="Transport protocol.")

    @property
    def container_port(self) -> int:
        return self.target_port or self.port


def _ports_input(value: Any) -> Any:
    """Accept the seed's shorthands: `[8080, 9090]` or `{http: 8080, metrics: 9090}`."""
    if isinstance(value, dict):
        return [{"name": name, "port": port} for name, port in value.items()]
    if isinstance(value, list):
        return [{"name": "http" if index == 0 else f"port-{item}", "port": item}
                if isinstance(item, int) and not isinstance(item, bool) else item
                for index, item in enumerate(value)]
    return value


class Resources(StrictModel):
    """CPU and memory the agent's container requests and may use."""

    cpu_request: Cpu = Field("100m", description="Guaranteed CPU, e.g. '250m' or '0.5' (the seed's 100m).")
    memory_request: Memory = Field("256Mi", description="Guaranteed memory, e.g. '512Mi' (the seed's 256Mi).")
    cpu_limit: Cpu | None = Field("500m", description="CPU ceiling (throttled above; the seed's 500m); null for "
                                                       "none.")
    memory_limit: Memory = Field("1Gi", description="Memory ceiling (OOM-killed above; the seed's 1Gi).")
    ephemeral_storage_limit: Memory = Field("1Gi", description="Ceiling for the writable /tmp and logs (not seed "
                                                               "004's 20Gi, sized for its 8Gi agents).")


class HealthCheck(StrictModel):
    """HTTP probes: seed 000's paths (its `health_check.path` is the liveness path), seed 004's timings."""

    path: str = Field("/health", description="Liveness probe path: failing restarts the container.")
    readiness_path: str | None = Field("/ready", description="Readiness probe path: failing takes the pod out "
                                                              "of the Service; null: `path`.")
    startup_path: str | None = Field(None, description="Startup probe path: holds the other probes until the "
                                                        "agent has started. Defaults to `path`.")
    port: PortNumber | PortName | None = Field(None, description="Port number or name to probe; defaults "
                                                                 "to the first port.")
    period_seconds: int = Field(10, ge=1, description="How often the liveness probe runs.")
    timeout_seconds: int = Field(5, ge=1, description="Liveness probe timeout.")
    failure_threshold: int = Field(3, ge=1, description="Liveness failures in a row before the container is "
                                                        "restarted.")
    readiness_period_seconds: int = Field(5, ge=1, description="How often the readiness probe runs.")
    readiness_timeout_seconds: int = Field(3, ge=1, description="Readiness (and startup) probe timeout.")
    readiness_failure_threshold: int = Field(2, ge=1, description="Readiness failures in a row before the pod "
                                                                  "leaves the Service.")
    startup_timeout_seconds: int = Field(150, ge=1, description="Time allowed to start (model loading, warm-up) "
                                                                "before the container is restarted (checked every "
                                                                "5 s).")

    @field_validator("path", "readiness_path", "startup_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute HTTP path starting with '/', e.g. '/health'")
        return value


class PodMetric(StrictModel):
    """A custom per-pod metric the HPA scales on (served by a metrics adapter)."""

    name: str = Field(description="Metric name as the custom metrics API exposes it, e.g. 'active_tasks_per_pod'.")
    target_average_value: Cpu = Field(description="Target average value per pod, e.g. 10 or '500m'.")


def _pod_metrics_input(value: Any) -> Any:
    """Accept `{active_tasks_per_pod: 10}` as shorthand for a list of PodMetric."""
    if isinstance(value, dict):
        return [{"name": name, "target_average_value": target} for name, target in value.items()]
    return value


class ScalingPolicy(StrictModel):
    """One HPA behavior policy: change at most `value` pods/percent per `period_seconds`."""

    type: ScalingPolicyType = Field(ScalingPolicyType.PERCENT, description="Pods or Percent.")
    value: int = Field(ge=1, description="Amount of change allowed per period.")
    period_seconds: int = Field(60, ge=1, le=1800, description="Window the policy applies over.")


class ScalingRules(StrictModel):
    """HPA behavior in one direction."""

    stabilization_window_seconds: int = Field(0, ge=0, le=3600, description="Look-back window that damps flapping.")
    select_policy: SelectPolicy = Field(SelectPolicy.MAX, description="Which policy wins when several apply.")
    policies: list[ScalingPolicy] = Field(default_factory=list, description="Rate limits; empty uses Kubernetes' defaults.")


def _default_scale_up() -> ScalingRules:
    return ScalingRules(stabilization_window_seconds=0,
                        policies=[ScalingPolicy(type=ScalingPolicyType.PERCENT, value=100, period_seconds=30),
                                  ScalingPolicy(type=ScalingPolicyType.PODS, value=10, period_seconds=30)])


def _default_scale_down() -> ScalingRules:
    # Agents hold in-flight tasks: shrink slowly, after five quiet minutes.
    return ScalingRules(stabilization_window_seconds=300,
                        policies=[ScalingPolicy(type=ScalingPolicyType.PERCENT, value=50, period_seconds=60)])


class ScalingBehavior(StrictModel):
    """How fast the HPA may scale up and down."""

    scale_up: ScalingRules = Field(default_factory=_default_scale_up, description="Scale-up rules (fast).")
    scale_down: ScalingRules = Field(default_factory=_default_scale_down, description="Scale-down rules (slow).")


class Scaling(StrictModel):
    """Replica count and the HorizontalPodAutoscaler (autoscaling/v2)."""

    autoscaling: bool = Field(True, description="Create an HPA; false keeps `initial_replicas` fixed.")
    initial_replicas: int = Field(3, ge=0, description="Replicas at creation (the HPA owns the count afterwards).")
    min_replicas: int = Field(2, ge=1, description="HPA lower bound.")
    max_replicas: int = Field(10, ge=1, description="HPA upper bound (seed 000's 10; 004's 50-1000 is one "
                                                    "fleet's size, set it per agent).")
    target_cpu: int | None = Field(70, ge=1, le=1000, description="Target average CPU utilisation, % of request; null to ignore CPU.")
    target_memory: int | None = Field(80, ge=1, le=1000, description="Target average memory utilisation, % of request; null to ignore memory.")
    custom_metrics: Annotated[list[PodMetric], BeforeValidator(
        _pod_metrics_input, json_schema_input_type=list[PodMetric] | dict[str, str | int | float])] = Field(
        default_factory=list, description="Per-pod custom metrics with a target average value.")
    behavior: ScalingBehavior = Field(default_factory=ScalingBehavior, description="Scale-up/down rate limits.")
    event_driven: EventDrivenScaling | None = Field(None, description="KEDA scales the agent (on its Kafka consumer "
                                                                      "lag or a Prometheus query) instead of an "
                                                                      "HPA; min/max_replicas still bound it.")

    @property
    def hpa(self) -> bool:
        """An HPA of the program's scales the agent (not KEDA's)."""
        return self.autoscaling and self.event_driven is None

    @property
    def scaled(self) -> bool:
        """Something (an HPA or KEDA) owns the replica count after creation."""
        return self.autoscaling or self.event_driven is not None


class Rollout(StrictModel):
    """RollingUpdate parameters: defaults keep full capacity during an update."""

    max_surge: IntOrPercent = Field("25%", description="Extra pods allowed during an update, count or percent (the "
                                                       "seed's 25%, at least one pod).")
    max_unavailable: IntOrPercent = Field("10%", description="Pods that may be down during an update, count or "
                                                             "percent (the seed's 10%: rounds down, so none below "
                                                             "10 replicas).")
    min_ready_seconds: int = Field(0, ge=0, description="Seconds a new pod must be ready before it counts as available.")
    revision_history_limit: int = Field(5, ge=0, description="Old ReplicaSets kept for rollback.")


class Disruption(StrictModel):
    """PodDisruptionBudget: how many replicas voluntary disruptions (drains) may take at once."""

    enabled: bool = Field(True, description="Create a PodDisruptionBudget.")
    max_unavailable: IntOrPercent | None = Field(1, description="Pods that may be evicted at once, count or percent "
                                                                "(not the seed's minAvailable 80%: below 5 replicas "
                                                                "it allows no eviction, and node drains hang).")
    min_available: IntOrPercent | None = Field(None, description="Alternative to max_unavailable; set one of the two.")


class Toleration(StrictModel):
    """Lets the agent run on tainted nodes (e.g. GPU pools)."""

    key: str | None = Field(None, description="Taint key; empty with Exists matches every taint.")
    operator: TolerationOperator = Field(TolerationOperator.EQUAL, description="Equal or Exists.")
    value: str | None = Field(None, description="Taint value, with Equal.")
    effect: TaintEffect | None = Field(None, description="Taint effect matched; null matches all.")
    toleration_seconds: int | None = Field(None, ge=0, description="For NoExecute: how long the pod stays.")


class Scheduling(StrictModel):
    """Where the agent's pods run."""

    node_selector: Labels = Field(default_factory=dict, description="Node labels the pods require.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Taints the pods tolerate.")
    affinity: dict[str, Any] | None = Field(None, description="A raw Kubernetes `affinity` object (camelCase), "
                                                              "merged over the generated anti-affinity.")
    spread_across_nodes: Placement = Field(Placement.PREFERRED, description="Keep replicas on different nodes.")
    spread_across_zones: Placement = Field(Placement.PREFERRED, description="Keep replicas in different zones.")
    priority_class_name: str | None = Field(None, description="PriorityClass of the pods.")


class SecretEnv(StrictModel):
    """An environment variable read from a key of an existing Kubernetes Secret."""

    secret: str = Field(description="Name of the Secret in the agent's namespace.")
    key: str = Field(description="Key inside the Secret.")
    optional: bool = Field(False, description="Start even when the Secret or key is missing.")


class SecretFile(StrictModel):
    """A key of an existing Kubernetes Secret mounted read-only as one file (preferred to an environment
    variable: not inherited by child processes, not shown by `kubectl describe`). A changed Secret
    reaches the file when the pod restarts (a single-file mount is not updated in place)."""

    secret: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253,
                        description="Name of the Secret in the agent's namespace.")
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253, description="Key inside the Secret.")
    path: str = Field(pattern=r"^/[-._/a-zA-Z0-9]*[-._a-zA-Z0-9]$", max_length=1024,
                      description="Absolute path of the file in the container, e.g. /var/run/secrets/app/api-key.")


class ServiceAccountSettings(StrictModel):
    """The agent's own ServiceAccount."""

    automount_token: bool = Field(False, description="Mount a Kubernetes API token; only agents that call "
                                                     "the API need one.")
    automount_reason: str | None = Field(None, max_length=200, pattern=r"^[^=]*$",
                                         description="Why the agent needs the token (required with automount_token; "
                                                     "written on the Deployment for scanners).")
    annotations: dict[str, str] = Field(default_factory=dict, description="e.g. cloud workload-identity bindings.")


class Security(StrictModel):
    """Container security context; the defaults satisfy the `restricted` Pod Security Standard."""

    run_as_user: int = Field(10001, ge=1, description="Non-root UID the container runs as.")
    run_as_group: int = Field(10001, ge=1, description="GID the container runs as.")
    fs_group: int = Field(10001, ge=1, description="Group that owns mounted volumes.")
    read_only_root_filesystem: bool = Field(True, description="Root filesystem read-only; /tmp is a writable emptyDir.")
    tmp_size_limit: Memory = Field("256Mi", description="Size limit of the writable /tmp volume.")


class AgentConfig(StrictModel):
    """One agent: a container image run as a Deployment with its Service, HPA and PDB."""

    agent_id: AgentId = Field(description="Unique id; names the Deployment, Service and ServiceAccount.")
    role: str = Field("agent", max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                      description="Kind of agent (coordinator, researcher, ...): the `component` label.")
    image: ImageRepository = Field(description="Image repository, e.g. 'ghcr.io/acme/research-agent'.")
    tag: ImageTag = Field("latest", description="Image tag; in production the image is pinned by `digest`.")
    digest: ImageDigest | None = Field(None, description="Pin the image by digest ('sha256:...'); wins over `tag`; "
                                                         "required in production.")
    image_pull_policy: PullPolicy | None = Field(None, description="Defaults to Always for `latest`, else IfNotPresent.")
    group: str | None = Field(None, description="Agent group (see `groups`); the agent runs in that group's namespace.")
    resources: Resources = Field(default_factory=Resources, description="CPU and memory requests and limits.")
    environment: EnvVars = Field(default_factory=dict, description="Environment variables (plain values).")
    secret_environment: dict[str, SecretEnv] = Field(default_factory=dict,
                                                     description="Environment variables read from Secrets (for "
                                                                 "apps that read secrets only from the "
                                                                 "environment; prefer `secret_files`).")
    secret_files: list[SecretFile] = Field(default_factory=list,
                                           description="Secret keys mounted read-only as files.")
    ports: Annotated[list[Port], BeforeValidator(
        _ports_input, json_schema_input_type=list[Port | PortNumber] | dict[str, PortNumber])] = Field(
        default_factory=lambda: [Port(name="http", port=8080), Port(name="metrics", port=9090)],
        description="Ports; a list of objects, `[8080, 9090]`, or `{http: 8080, metrics: 9090}`.")
    health_check: HealthCheck = Field(default_factory=HealthCheck, description="Liveness, readiness and startup probes.")
    scaling: Scaling = Field(default_factory=Scaling, description="Replicas and autoscaling.")
    rollout: Rollout = Field(default_factory=Rollout, description="Rolling update parameters.")
    disruption: Disruption = Field(default_factory=Disruption, description="PodDisruptionBudget.")
    scheduling: Scheduling = Field(default_factory=Scheduling, description="Node selection and spreading.")
    security: Security = Field(default_factory=Security, description="Container security context.")
    service_account: ServiceAccountSettings = Field(default_factory=ServiceAccountSettings,
                                                    description="The agent's ServiceAccount.")
    service_type: ServiceType = Field(ServiceType.CLUSTER_IP, description="Service type.")
    labels: Labels = Field(default_factory=dict, description="Extra labels on this agent's objects and pods.")
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="Extra annotations on the pods.")
    termination_grace_period_seconds: int = Field(60, ge=0, description="Time to finish in-flight tasks on shutdown.")
    talks_to: list[str] = Field(default_factory=list, description="Agent ids this agent calls (the allowed call graph).")
    consumes: list[str] = Field(default_factory=list, description="Kafka topics the agent reads (its KafkaUser may "
                                                                  "read them with its consumer group).")
    produces: list[str] = Field(default_factory=list, description="Kafka topics the agent writes.")
    consumer_group: str | None = Field(None, pattern=r"^[a-zA-Z0-9._-]{1,249}$",
                                       description="Its Kafka consumer group; null: the agent id.")
    uses: list[str] = Field(default_factory=list, description="Data stores (`data.stores[].name`) the agent uses: "
                                                              "it gets their address and credentials.")
    routing_rules: list[RoutingRule] = Field(default_factory=list, description="Traffic rules for calls into this agent.")
    load_balancer: LoadBalancerField = Field(default_factory=LoadBalancer,
                                             description="Load balancing of calls into this agent.")
    traffic: Traffic = Field(default_factory=Traffic, description="Mesh traffic policy (timeouts, retries, "
                                                                  "circuit breaking).")
    canary: Canary | None = Field(None, description="Canary release of a new version.")
    blue_green: BlueGreen | None = Field(None, description="Blue-green release (instead of a canary).")

    @property
    def image_ref(self) -> str:
        """`image@digest` when pinned, else `image:tag` (bare `image` for an empty tag)."""
        if self.digest:
            return f"{self.image}@{self.digest}"
        return f"{self.image}:{self.tag}" if self.tag else self.image
