"""What the Istio builders share: API versions and workload identities (SPIFFE principals)."""

from __future__ import annotations

from ..config.agent import AgentConfig
from ..config.system import SystemConfig


def api_version(system: SystemConfig, group: str) -> str:
    """`networking.istio.io/v1` (or v1beta1, per `mesh.api_version`)."""
    return f"{group}.istio.io/{system.mesh.api_version.value}"


def principal(system: SystemConfig, agent: AgentConfig) -> str:
    """The SPIFFE identity of an agent's pods (its ServiceAccount)."""
    return service_account_principal(system, system.agent_namespace(agent), agent.agent_id)


def service_account_principal(system: SystemConfig, namespace: str, service_account: str) -> str:
    """The SPIFFE identity of the pods running as `service_account` in `namespace`."""
    return f"{system.mesh.trust_domain}/ns/{namespace}/sa/{service_account}"
