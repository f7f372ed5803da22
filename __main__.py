"""The multi-agent system as a Pulumi program: read the stack's config, create the components, export.

`pulumi preview` / `pulumi up` run this against a cluster; `python -m components.render`
runs the very same file under Pulumi mocks to write the objects offline.
"""

import pulumi

from components.agent_deployment import AgentDeployment, AgentDeploymentArgs
from components.agent_mesh import AgentMesh, AgentMeshArgs
from components.config import ConfigError
from components.monitoring_stack import MonitoringStack, MonitoringStackArgs
from components.pulumi_config import load_config, read_secrets

try:
    system = load_config()
    # With a secret store every credential comes from the store: no Pulumi secret is read.
    secrets = (read_secrets(system) if system.monitoring.enabled and system.monitoring.credentials.secret_store is None
               else {})
except ConfigError as error:
    # RunError: Pulumi shows the message and stops, without a Python traceback.
    raise pulumi.RunError(error.report()) from None

agents = AgentDeployment("agents", AgentDeploymentArgs(system=system))
agent_mesh = AgentMesh("mesh", AgentMeshArgs(system=system, depends_on=[agents]))
if system.monitoring.enabled:
    monitoring = MonitoringStack("monitoring", MonitoringStackArgs(
        system=system, secrets=secrets, depends_on=[agents]))
    pulumi.export("monitoring_objects", monitoring.objects)
    pulumi.export("monitoring_url", monitoring.service_url)
    # The credentials Secrets and keys: written by pulumi up, or to create when applying the offline render.
    pulumi.export("monitoring_credentials", monitoring.credentials)

pulumi.export("namespaces", agents.namespaces)
pulumi.export("agents", agents.agents)
pulumi.export("mesh_traffic", agent_mesh.traffic)
pulumi.export("mesh_policies", agent_mesh.policies)
