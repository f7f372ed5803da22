"""The system config: one typed, documented model tree read from `multi-agent-system:system`.

Every user-facing field lives here with a description and a default, `extra="forbid"`
everywhere so typos are caught, and the seed's field names (`agent_id`, `image`, `tag`,
`resources.cpu_request`, `health_check.path`, `scaling.initial_replicas`, ...) so a
`system_config` written for the course material works as is. Rules that span several
fields (requests vs limits, replica order, references between agents) live in
`config_checks.py` and run as part of validation, so a `SystemConfig` that exists is valid.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      field_validator, model_validator)

from .config_errors import ConfigError, ConfigProblem, problems_from_validation_error
from .quantities import QuantityError, cpu_cores, memory_bytes, normalize_quantity

PROJECT = "multi-agent-system"
CONFIG_KEY = "system"  # read as `multi-agent-system:system`

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_IMAGE_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REPOSITORY = re.compile(
    rf"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?::\d+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$")

# Longest agent id: the Deployment name plus the longest suffix the program adds
# ("-canary", "-green") must stay a 63-character DNS label.
MAX_AGENT_ID_LENGTH = 50


# --- field types ---------------------------------------------------------------------------

def _agent_id(value: str) -> str:
    if len(value) > MAX_AGENT_ID_LENGTH or not _DNS1035_LABEL.match(value):
        raise ValueError(f"{value!r} is not a valid agent id: use lowercase letters, digits and '-', "
                         f"start with a letter, end with a letter or digit, at most "
                         f"{MAX_AGENT_ID_LENGTH} characters (e.g. 'research-agent')")
    return value


def _namespace(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValueError(f"{value!r} is not a valid namespace name: use lowercase letters, digits and '-', "
                         f"at most 63 characters, starting and ending with a letter or digit")
    return value


def _port_name(value: str) -> str:
    if len(value) > 15 or not _DNS1123_LABEL.match(value) or not re.search("[a-z]", value) or "--" in value:
        raise ValueError(f"{value!r} is not a valid port name: at most 15 lowercase letters, digits and "
                         f"single '-', with at least one letter (e.g. 'http', 'metrics')")
    return value


def _cpu(value: str) -> str:
    try:
        cpu_cores(value)
    except QuantityError as error:
        raise ValueError(str(error)) from None
    return value


def _memory(value: str) -> str:
    try:
        memory_bytes(value)
    except QuantityError as error:
        raise ValueError(str(error)) from None
    return value


def _quantity_input(value: Any) -> Any:
    try:
        return normalize_quantity(value)
    except QuantityError:
        return value  # let the str type check report it


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration; write it like '30s', '1.5s', '500ms' or '1m'")
    return value


def _label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        raise ValueError(f"label key {key!r} has an invalid prefix; it must be a DNS subdomain such as 'example.com'")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValueError(f"label key {key!r} is invalid: at most 63 letters, digits, '-', '_' or '.', "
                         f"starting and ending with a letter or digit")
    return key


def _labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        _label_key(key)
        if len(value) > 63 or (value and not _LABEL_NAME.match(value)):
            raise ValueError(f"label value {value!r} (key {key!r}) is invalid: at most 63 letters, digits, "
                             f"'-', '_' or '.', starting and ending with a letter or digit")
    return labels


def _env_names(env: dict[str, str]) -> dict[str, str]:
    for name in env:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid environment variable name (letters, digits, '_', '-', '.')")
    return env


def _stringify_values(value: Any) -> Any:
    """YAML turns `DEBUG: true` and `PORT: 8080` into bool/int; env vars and labels are strings."""
    if isinstance(value, dict):
        return {key: ("true" if item is True else "false" if item is False else str(item))
                if isinstance(item, (bool, int, float)) else item for key, item in value.items()}
    return value


def _int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} must be >= 0")
        return value
    if not re.fullmatch(r"\d{1,3}%", value) or int(value[:-1]) > 100:
        raise ValueError(f"{value!r} must be a count such as 1 or a percentage from '0%' to '100%'")
    return value


AgentId = Annotated[str, AfterValidator(_agent_id)]
IntOrPercent = Annotated[int | str, AfterValidator(_int_or_percent)]
Namespace = Annotated[str, AfterValidator(_namespace)]
PortName = Annotated[str, AfterValidator(_port_name)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]
Cpu = Annotated[str, BeforeValidator(_quantity_input, json_schema_input_type=str | int | float), AfterValidator(_cpu)]
Memory = Annotated[str, BeforeValidator(_quantity_input, json_schema_input_type=str | int),
                   AfterValidator(_memory)]
Duration = Annotated[str, AfterValidator(_duration)]
_ScalarMap = dict[str, str | int | float | bool]
Labels = Annotated[dict[str, str], BeforeValidator(_stringify_values, json_schema_input_type=_ScalarMap),
                   AfterValidator(_labels)]
EnvVars = Annotated[dict[str, str], BeforeValidator(_stringify_values, json_schema_input_type=_ScalarMap),
                    AfterValidator(_env_names)]


class StrictModel(BaseModel):
    """Base for every config model: unknown fields are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True, use_enum_values=False)


# --- enums (Kubernetes string fields) -------------------------------------------------------

class Protocol(str, Enum):
    """Transport protocol of a container/service port."""
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class ServiceType(str, Enum):
    """How the agent's Service is exposed."""
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class PullPolicy(str, Enum):
    """Container image pull policy."""
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Placement(str, Enum):
    """How strongly replicas are spread: `required` refuses to schedule rather than co-locate."""
    REQUIRED = "required"
    PREFERRED = "preferred"
    NONE = "none"


class PodSecurityLevel(str, Enum):
    """Pod Security Standard enforced on namespaces the program creates."""
    RESTRICTED = "restricted"
    BASELINE = "baseline"
    PRIVILEGED = "privileged"


class ScalingPolicyType(str, Enum):
    """HPA behavior policy unit."""
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(str, Enum):
    """Which HPA behavior policy wins when several apply."""
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class LoadBalancerAlgorithm(str, Enum):
    """Istio DestinationRule simple load balancer."""
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"
    LEAST_CONN = "LEAST_CONN"
    RANDOM = "RANDOM"
    PASSTHROUGH = "PASSTHROUGH"


class TolerationOperator(str, Enum):
    """Toleration match operator."""
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(str, Enum):
    """Taint effect a toleration matches."""
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


# --- agent ----------------------------------------------------------------------------------

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

    cpu_request: Cpu = Field("100m", description="Guaranteed CPU, e.g. '250m' or '0.5'.")
    memory_request: Memory = Field("128Mi", description="Guaranteed memory, e.g. '256Mi'.")
    cpu_limit: Cpu | None = Field("500m", description="CPU ceiling (throttled above); null for none.")
    memory_limit: Memory = Field("512Mi", description="Memory ceiling (OOM-killed above).")
    ephemeral_storage_limit: Memory = Field("1Gi", description="Ceiling for the writable /tmp and logs.")


class HealthCheck(StrictModel):
    """HTTP probes; the seed's `health_check.path` is the liveness path."""

    path: str = Field("/health", description="Liveness probe path: failing restarts the container.")
    readiness_path: str | None = Field(None, description="Readiness probe path: failing takes the pod out "
                                                          "of the Service. Defaults to `path`.")
    startup_path: str | None = Field(None, description="Startup probe path: holds the other probes until the "
                                                        "agent has started. Defaults to `path`.")
    port: PortNumber | PortName | None = Field(None, description="Port number or name to probe; defaults "
                                                                 "to the first port.")
    period_seconds: int = Field(10, ge=1, description="How often the liveness and readiness probes run.")
    timeout_seconds: int = Field(3, ge=1, description="Probe timeout.")
    failure_threshold: int = Field(3, ge=1, description="Failures in a row before the probe counts as failed.")
    startup_timeout_seconds: int = Field(300, ge=1, description="Time allowed to start (model loading, warm-up) "
                                                                "before the container is restarted.")

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
                                  ScalingPolicy(type=ScalingPolicyType.PODS, value=4, period_seconds=30)])


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
    initial_replicas: int = Field(2, ge=0, description="Replicas at creation (the HPA owns the count afterwards).")
    min_replicas: int = Field(1, ge=1, description="HPA lower bound.")
    max_replicas: int = Field(5, ge=1, description="HPA upper bound.")
    target_cpu: int | None = Field(70, ge=1, le=1000, description="Target average CPU utilisation, % of request; null to ignore CPU.")
    target_memory: int | None = Field(80, ge=1, le=1000, description="Target average memory utilisation, % of request; null to ignore memory.")
    custom_metrics: Annotated[list[PodMetric], BeforeValidator(
        _pod_metrics_input, json_schema_input_type=list[PodMetric] | dict[str, str | int | float])] = Field(
        default_factory=list, description="Per-pod custom metrics with a target average value.")
    behavior: ScalingBehavior = Field(default_factory=ScalingBehavior, description="Scale-up/down rate limits.")


class Rollout(StrictModel):
    """RollingUpdate parameters: defaults keep full capacity during an update."""

    max_surge: IntOrPercent = Field(1, description="Extra pods allowed during an update (count or percent).")
    max_unavailable: IntOrPercent = Field(0, description="Pods that may be down during an update (count or percent).")
    min_ready_seconds: int = Field(0, ge=0, description="Seconds a new pod must be ready before it counts as available.")
    revision_history_limit: int = Field(5, ge=0, description="Old ReplicaSets kept for rollback.")


class Disruption(StrictModel):
    """PodDisruptionBudget: how many replicas voluntary disruptions (drains) may take at once."""

    enabled: bool = Field(True, description="Create a PodDisruptionBudget.")
    max_unavailable: IntOrPercent | None = Field(1, description="Pods that may be evicted at once (count or percent).")
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


class ServiceAccountSettings(StrictModel):
    """The agent's own ServiceAccount."""

    automount_token: bool = Field(False, description="Mount a Kubernetes API token; only agents that call "
                                                     "the API need one.")
    annotations: dict[str, str] = Field(default_factory=dict, description="e.g. cloud workload-identity bindings.")


class Security(StrictModel):
    """Container security context; the defaults satisfy the `restricted` Pod Security Standard."""

    run_as_user: int = Field(10001, ge=1, description="Non-root UID the container runs as.")
    run_as_group: int = Field(10001, ge=1, description="GID the container runs as.")
    fs_group: int = Field(10001, ge=1, description="Group that owns mounted volumes.")
    read_only_root_filesystem: bool = Field(True, description="Root filesystem read-only; /tmp is a writable emptyDir.")
    tmp_size_limit: Memory = Field("256Mi", description="Size limit of the writable /tmp volume.")


class UriMatch(StrictModel):
    """Match on the request path: set exactly one of prefix, exact, regex."""

    prefix: str | None = Field(None, description="Path prefix, e.g. '/api/'.")
    exact: str | None = Field(None, description="Exact path.")
    regex: str | None = Field(None, description="RE2 regular expression.")

    @model_validator(mode="after")
    def _one_kind(self) -> "UriMatch":
        if sum(value is not None for value in (self.prefix, self.exact, self.regex)) != 1:
            raise ValueError("set exactly one of prefix, exact, regex")
        return self


class RouteMatch(StrictModel):
    """Which requests a routing rule applies to."""

    uri: UriMatch | None = Field(None, description="Match on the request path.")
    headers: dict[str, UriMatch] = Field(default_factory=dict, description="Match on request headers.")


class Retries(StrictModel):
    """Retry policy of a route."""

    attempts: int = Field(3, ge=0, description="Retries after the first try (0 disables).")
    per_try_timeout: Duration = Field("10s", description="Timeout of each try.")
    retry_on: str = Field("5xx,reset,connect-failure,retriable-4xx", description="Envoy retry conditions.")


class RoutingRule(StrictModel):
    """A traffic rule for calls into this agent (Istio VirtualService http route)."""

    name: str = Field(description="Rule name, shown in Istio metrics.")
    match: RouteMatch = Field(default_factory=RouteMatch, description="Requests the rule applies to.")
    rewrite_uri: str | None = Field(None, description="Rewrite the matched path to this.")
    timeout: Duration | None = Field(None, description="Route timeout, e.g. '30s' (LLM calls are slow).")
    retries: Retries | None = Field(None, description="Retry policy.")
    idempotent: bool = Field(True, description="False disables retries explicitly (Istio retries twice by default).")


class LoadBalancer(StrictModel):
    """Client-side load balancing of calls into this agent (Istio DestinationRule)."""

    algorithm: LoadBalancerAlgorithm = Field(LoadBalancerAlgorithm.LEAST_REQUEST, description="Simple algorithm.")
    consistent_hash_header: str | None = Field(None, description="Hash on this header (session affinity) "
                                                                 "instead of `algorithm`.")


def _load_balancer_input(value: Any) -> Any:
    """Accept the seed's shorthand `load_balancer: ROUND_ROBIN`."""
    return {"algorithm": value} if isinstance(value, str) else value


class AgentConfig(StrictModel):
    """One agent: a container image run as a Deployment with its Service, HPA and PDB."""

    agent_id: AgentId = Field(description="Unique id; names the Deployment, Service and ServiceAccount.")
    role: str = Field("agent", max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                      description="Kind of agent (coordinator, researcher, ...): the `component` label.")
    image: str = Field(description="Image repository, e.g. 'ghcr.io/acme/research-agent'.")
    tag: str = Field("latest", description="Image tag; `latest` and empty tags are refused in production.")
    digest: str | None = Field(None, description="Pin the image by digest ('sha256:...'); wins over `tag`.")
    image_pull_policy: PullPolicy | None = Field(None, description="Defaults to Always for `latest`, else IfNotPresent.")
    group: str | None = Field(None, description="Agent group (see `groups`); the agent runs in that group's namespace.")
    resources: Resources = Field(default_factory=Resources, description="CPU and memory requests and limits.")
    environment: EnvVars = Field(default_factory=dict, description="Environment variables (plain values).")
    secret_environment: dict[str, SecretEnv] = Field(default_factory=dict,
                                                     description="Environment variables read from Secrets.")
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
    routing_rules: list[RoutingRule] = Field(default_factory=list, description="Traffic rules for calls into this agent.")
    load_balancer: Annotated[LoadBalancer, BeforeValidator(
        _load_balancer_input, json_schema_input_type=LoadBalancer | LoadBalancerAlgorithm)] = Field(
        default_factory=LoadBalancer, description="Load balancing of calls into this agent.")

    @property
    def image_ref(self) -> str:
        """`image@digest` when pinned, else `image:tag` (bare `image` for an empty tag)."""
        if self.digest:
            return f"{self.image}@{self.digest}"
        return f"{self.image}:{self.tag}" if self.tag else self.image

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if "@" in value or re.search(r":[^/]*$", value):
            raise ValueError(f"{value!r} includes a tag or digest; put it in `tag` (or `digest`) instead")
        if not _IMAGE_REPOSITORY.match(value):
            raise ValueError(f"{value!r} is not an image repository; write it like 'ghcr.io/acme/research-agent' "
                             f"(lowercase path, optional registry host)")
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if value and not _IMAGE_TAG.match(value):
            raise ValueError(f"{value!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128)")
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST.match(value):
            raise ValueError(f"{value!r} is not an image digest; write it as 'sha256:' and 64 hex digits")
        return value


# --- namespaces and groups ------------------------------------------------------------------

class ResourceQuotaConfig(StrictModel):
    """Caps on what a namespace's pods may request in total (ResourceQuota)."""

    requests_cpu: Cpu | None = Field("8", description="Total CPU requests.")
    requests_memory: Memory | None = Field("16Gi", description="Total memory requests.")
    limits_cpu: Cpu | None = Field("16", description="Total CPU limits.")
    limits_memory: Memory | None = Field("32Gi", description="Total memory limits.")
    pods: int | None = Field(100, ge=0, description="Number of pods.")


class LimitRangeConfig(StrictModel):
    """Defaults and bounds for containers that don't say (LimitRange)."""

    default_cpu_request: Cpu = Field("100m", description="CPU request of containers that set none.")
    default_memory_request: Memory = Field("128Mi", description="Memory request of containers that set none.")
    default_cpu_limit: Cpu = Field("500m", description="CPU limit of containers that set none.")
    default_memory_limit: Memory = Field("512Mi", description="Memory limit of containers that set none.")
    max_cpu: Cpu | None = Field(None, description="Largest CPU limit one container may have.")
    max_memory: Memory | None = Field(None, description="Largest memory limit one container may have.")


class AgentGroup(StrictModel):
    """A group of agents sharing a namespace with its own quota (e.g. per team or tier)."""

    namespace: Namespace | None = Field(None, description="Namespace of the group; defaults to "
                                                          "'<system namespace>-<group name>'.")
    labels: Labels = Field(default_factory=dict, description="Extra labels on the group's namespace.")
    quota: ResourceQuotaConfig | None = Field(default_factory=ResourceQuotaConfig, description="ResourceQuota; null for none.")
    limit_range: LimitRangeConfig | None = Field(default_factory=LimitRangeConfig, description="LimitRange; null for none.")


class SystemConfig(StrictModel):
    """The whole multi-agent system: namespaces, shared labels and the agents."""

    name: str = Field(PROJECT, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                      description="System name: the `app.kubernetes.io/part-of` label.")
    environment: str = Field("dev", max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                             description="Environment name, added as the `environment` label.")
    production: bool = Field(False, description="Stricter rules: pinned image tags, no `latest`.")
    namespace: Namespace = Field("agents", description="Namespace of agents without a group.")
    create_namespace: bool = Field(True, description="Create the namespace(s); false to use existing ones.")
    pod_security: PodSecurityLevel = Field(PodSecurityLevel.RESTRICTED,
                                           description="Pod Security Standard enforced on created namespaces.")
    labels: Labels = Field(default_factory=dict, description="Labels added to every object.")
    quota: ResourceQuotaConfig | None = Field(None, description="ResourceQuota of the main namespace; null for none.")
    limit_range: LimitRangeConfig | None = Field(None, description="LimitRange of the main namespace; null for none.")
    groups: dict[str, AgentGroup] = Field(default_factory=dict, description="Agent groups, each with its own namespace.")
    agents: list[AgentConfig] = Field(min_length=1, description="The agents.")

    @field_validator("groups")
    @classmethod
    def _group_names(cls, groups: dict[str, AgentGroup]) -> dict[str, AgentGroup]:
        for name in groups:
            if len(name) > 40 or not _DNS1123_LABEL.match(name):
                raise ValueError(f"group name {name!r} must be a DNS label (lowercase letters, digits, '-'), "
                                 f"at most 40 characters")
        return groups

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "SystemConfig":
        from .config_checks import cross_field_problems  # the checks need the finished model

        problems = cross_field_problems(self)
        if problems:
            raise ConfigError(problems)
        return self

    def group_namespace(self, group: str | None) -> str:
        """Namespace of an agent group (the main namespace for agents without one)."""
        if group is None:
            return self.namespace
        return self.groups[group].namespace or f"{self.namespace}-{group}"

    def agent_namespace(self, agent: AgentConfig) -> str:
        """Namespace an agent's objects live in."""
        return self.group_namespace(agent.group)


# --- loading --------------------------------------------------------------------------------

def parse_system_config(raw: Any, source: str = f"{PROJECT}:{CONFIG_KEY}") -> SystemConfig:
    """Validate a raw config value; raise ConfigError listing every problem found."""
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem("", f"must be a mapping with an `agents` list (got {type(raw).__name__})")],
                          source)
    try:
        return SystemConfig.model_validate(raw)
    except ValidationError as error:
        problems = problems_from_validation_error(error, SystemConfig)
        broken = {detail["loc"][1] for detail in error.errors() if detail["loc"][:1] == ("agents",)
                  and len(detail["loc"]) > 1}
        raise ConfigError(problems + _problems_of_sound_agents(raw, broken), source) from None
    except ConfigError as error:
        raise ConfigError(error.problems, source) from None


def _problems_of_sound_agents(raw: dict[str, Any], broken: set[Any]) -> list[ConfigProblem]:
    """While some fields are invalid, still report the per-agent rules of the agents that parse.

    Users then see every problem in one run instead of fixing them in rounds.
    """
    from .config_checks import agent_problems

    agents = raw.get("agents")
    if not isinstance(agents, list):
        return []
    problems: list[ConfigProblem] = []
    for index, item in enumerate(agents):
        if index in broken:
            continue
        try:
            agent = AgentConfig.model_validate(item)
        except ValidationError:
            continue
        problems += agent_problems(agent, f"agents[{index}]", raw.get("production") is True)
    return problems


def load_config(config: Any = None) -> SystemConfig:
    """Read `multi-agent-system:system` from the Pulumi stack config and validate it.

    `config` is a `pulumi.Config` (made for the project when omitted); the import is local so
    this module, like the builders, does not need the Pulumi runtime.
    """
    if config is None:
        import pulumi

        config = pulumi.Config(PROJECT)
    raw = config.get_object(CONFIG_KEY)
    if raw is None:
        raise ConfigError([ConfigProblem(
            f"{PROJECT}:{CONFIG_KEY}",
            f"is not set; add it to Pulumi.<stack>.yaml under `config:` (see Pulumi.dev.yaml) or "
            f"run `pulumi config set --path {CONFIG_KEY}.agents[0].agent_id my-agent`")])
    return parse_system_config(raw)
