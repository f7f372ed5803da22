"""What the Istio builders share: API versions, workload identities and object metadata."""

from __future__ import annotations

from ..config.agent import AgentConfig
from ..config.system import SystemConfig


def api_version(system: SystemConfig, group: str) -> str:
    """`networking.istio.io/v1` (or v1beta1, per `mesh.api_version`)."""
    return f"{group}.istio.io/{system.mesh.api_version.value}"


def principal(system: SystemConfig, agent: AgentConfig) -> str:
    """The SPIFFE identity of an agent's pods (its ServiceAccount)."""
    return f"{system.mesh.trust_domain}/ns/{system.agent_namespace(agent)}/sa/{agent.agent_id}"
