"""The system config: one typed, documented model tree read from `multi-agent-system:system`.

Every user-facing field lives in this model tree with a description and a default,
`extra="forbid"` everywhere so typos are caught, and the seed's field names so a
`system_config` written for the course material works as is. Field types are in
`types.py`, the agent models in `agent.py`; rules that span several fields live in
`checks.py` and run in `parse.py`, the one entry point that turns raw config into a
`SystemConfig` or a `ConfigError`.
"""

from __future__ import annotations

from pydantic import Field, PrivateAttr, field_validator

from .agent import AgentConfig
from .mesh import MeshConfig
from .messaging import DataConfig, MessagingConfig
from .monitoring import MonitoringConfig
from .region import RegionConfig
from .types import DNS1123_LABEL, Cpu, Labels, Memory, Namespace, PodSecurityLevel, StrictModel

PROJECT = "multi-agent-system"
CONFIG_KEY = "system"  # read as `multi-agent-system:system`


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
    mesh: MeshConfig = Field(default_factory=MeshConfig, description="Istio traffic management and zero trust.")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig,
                                         description="Prometheus Operator objects, alerting, dashboards, monitoring pod.")
    messaging: MessagingConfig = Field(default_factory=MessagingConfig, description="The Kafka backbone.")
    data: DataConfig = Field(default_factory=DataConfig, description="The data layer agents use.")
    region: RegionConfig | None = Field(None, description="This stack's region in a multi-region system (usually "
                                                          "the `region` config key of a region stack); null: one "
                                                          "cluster.")
    agents: list[AgentConfig] = Field(min_length=1, description="The agents.")
    _checked: bool = PrivateAttr(False)  # set by parse_system_config once the cross-field rules pass

    @property
    def checked(self) -> bool:
        """True when this config came from `parse_system_config`, so the cross-field rules hold too."""
        return self._checked

    @field_validator("groups")
    @classmethod
    def _group_names(cls, groups: dict[str, AgentGroup]) -> dict[str, AgentGroup]:
        for name in groups:
            if len(name) > 40 or not DNS1123_LABEL.match(name):
                raise ValueError(f"group name {name!r} must be a DNS label (lowercase letters, digits, '-'), "
                                 f"at most 40 characters")
        return groups

    def group_namespace(self, group: str | None) -> str:
        """Namespace of an agent group (the main namespace for agents without one)."""
        if group is None:
            return self.namespace
        return self.groups[group].namespace or f"{self.namespace}-{group}"

    def agent_namespace(self, agent: AgentConfig) -> str:
        """Namespace an agent's objects live in."""
        return self.group_namespace(agent.group)
