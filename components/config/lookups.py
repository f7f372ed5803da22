"""Facts about a validated system that builders of several APIs need, derived in one place.

Kubernetes, Istio and Prometheus objects must agree on these (which namespaces hold agents,
who calls whom, where the monitoring service lives, which port serves metrics), so each is
computed here once instead of in every builder.
"""

from __future__ import annotations

from typing import Any

from .agent import AgentConfig, Port
from .monitoring import SERVICE_ID, SERVICE_PORT
from .system import SystemConfig


def agent_namespaces(system: SystemConfig) -> list[str]:
    """The namespaces that hold agents, sorted."""
    return sorted({system.agent_namespace(agent) for agent in system.agents})


def agents_by_namespace(system: SystemConfig) -> dict[str, list[AgentConfig]]:
    """Agents grouped by their namespace, in config order."""
    grouped: dict[str, list[AgentConfig]] = {}
    for agent in system.agents:
        grouped.setdefault(system.agent_namespace(agent), []).append(agent)
    return grouped


def callers(system: SystemConfig, agent: AgentConfig) -> list[AgentConfig]:
    """Agents that declare they call `agent` (its `talks_to` callers)."""
    return [caller for caller in system.agents if agent.agent_id in caller.talks_to]


def service_host(system: SystemConfig, agent: AgentConfig) -> str:
    """Cluster DNS name of the agent's Service, the host other agents call."""
    return f"{agent.agent_id}.{system.agent_namespace(agent)}.svc.cluster.local"


def metrics_port(system: SystemConfig, agent: AgentConfig) -> Port | None:
    """The agent's port named `mesh.metrics_port_name`, if it has one."""
    return next((port for port in agent.ports if port.name == system.mesh.metrics_port_name), None)


def scraper_namespace(system: SystemConfig) -> str:
    """Where the collector and Prometheus run (mesh.monitoring_namespace, else monitoring.namespace)."""
    return system.mesh.monitoring_namespace or system.monitoring.namespace


def credentials_secret_name(system: SystemConfig) -> str:
    """The Kubernetes Secret holding the alerting credentials and the API token."""
    return f"{system.name}-monitoring-credentials"


def monitoring_service_url(system: SystemConfig) -> str:
    """In-cluster URL of the monitoring service's HTTP API."""
    return f"http://{SERVICE_ID}.{system.monitoring.namespace}.svc.cluster.local:{SERVICE_PORT}"


def hpa_behavior(agent: AgentConfig) -> dict[str, Any]:
    """The agent's scale-up/down rules as an autoscaling/v2 `behavior` (our HPA's, and the one KEDA's HPA gets)."""
    def rules(settings: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"stabilizationWindowSeconds": settings.stabilization_window_seconds,
                               "selectPolicy": settings.select_policy.value}
        if settings.policies:
            out["policies"] = [{"type": policy.type.value, "value": policy.value,
                                "periodSeconds": policy.period_seconds} for policy in settings.policies]
        return out
    behavior = agent.scaling.behavior
    return {"scaleUp": rules(behavior.scale_up), "scaleDown": rules(behavior.scale_down)}
