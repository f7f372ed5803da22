"""MonitoringStack: Prometheus Operator objects, alert routing, dashboards and the monitoring pod.

Registers what prometheus/ and kubernetes/monitoring_pod.py build. Credentials (Slack,
e-mail, PagerDuty, the service's admin and read tokens and ingestion key) arrive as Pulumi
secrets (pulumi_config.read_secrets) and go into one Kubernetes Secret; every other object only
references that Secret. The service's credentials that no Pulumi secret is named for are
generated once (random.RandomPassword, kept in the stack's state). Each agent namespace gets
its own ingestion token, derived from the ingestion key, in a Secret the agents' OpenTelemetry
exporters read: an agent never holds more than ingestion rights for its namespace. With
`monitoring.credentials.secret_store` the same Secrets are ExternalSecrets filled from that store
instead (GitOps): no credential value passes through the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_random

from .config import require_checked
from .config.lookups import agent_namespaces, credentials_secret_name, monitoring_service_url
from .config.monitoring import INGEST_KEY_KEY
from .config.system import SystemConfig
from .kubernetes import monitoring_pod
from .kubernetes.monitoring_network import monitoring_network_policy
from .kubernetes.namespaces import namespace as namespace_object
from .prometheus.alerting import alertmanager_config
from .prometheus.dashboards import dashboard_config_maps
from .prometheus.monitors import service_monitors
from .prometheus.rules import prometheus_rule
from .registration import register_object, registered_label
from .secrets.external_secrets import external_secret


@dataclass(frozen=True)
class MonitoringStackArgs:
    """Inputs of MonitoringStack."""

    system: SystemConfig
    """The validated system config; `monitoring` says what is created."""

    secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Credential values by key in the credentials Secret (pulumi_config.read_secrets); the service's own
    credentials missing here are generated."""

    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """Resources every object waits for (the AgentDeployment, whose namespaces the RBAC names)."""

    def __post_init__(self) -> None:
        require_checked(self.system)


class MonitoringStack(pulumi.ComponentResource):
    """ServiceMonitors, PrometheusRule, AlertmanagerConfig (+ Secret), dashboards, and the monitoring pod."""

    objects: pulumi.Output[list[str]]
    """`kind namespace/name` of every object created."""

    service_url: pulumi.Output[str]
    """In-cluster URL of the monitoring service's HTTP API."""

    credentials: pulumi.Output[list[dict[str, str]]]
    """Every credential, one entry per Secret key (namespace, secret, key, how its value is made, and with a secret
    store its remote_key): what `pulumi up` writes, or what to create when applying the offline render."""

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("multi-agent-system:monitoring:MonitoringStack", name, None, opts)
        system = args.system
        monitoring = system.monitoring
        self._name = name
        self._after = list(args.depends_on)
        created: list[pulumi.Output[str]] = []
        if monitoring.create_namespace:
            namespace = register_object(f"{name}-namespace", namespace_object(system, monitoring.namespace),
                                        self._options())
            self._after.append(namespace)
            created.append(registered_label(namespace, namespace_object(system, monitoring.namespace)))
        if monitoring.credentials.secret_store is not None:
            created += self._stored_secrets(system)
        else:
            created += self._secrets(system, args.secrets)
        built: list[tuple[str, dict[str, Any]]] = []
        if monitoring.prometheus_operator:
            built += [(f"service-monitor-{obj['metadata']['name']}", obj) for obj in service_monitors(system)]
            built.append(("rules", prometheus_rule(system)))
            if monitoring.receivers:
                built.append(("alertmanager-config", alertmanager_config(system)))
        if monitoring.dashboards.enabled:
            built += [(f"dashboard-{obj['metadata']['name']}", obj) for obj in dashboard_config_maps(system)]
        built += [("service-account", monitoring_pod.service_account(system)),
                  ("settings", monitoring_pod.settings_config_map(system)),
                  *((f"{obj['kind'].lower()}-{obj['metadata']['namespace']}", obj)  # (no discovery: no access)
                    for obj in (monitoring_pod.discovery_rbac(system) if monitoring.service.source == "scrape"
                                else [])),
                  *((f"state-{obj['kind'].lower()}", obj) for obj in monitoring_pod.state_rbac(system)),
                  ("deployment", monitoring_pod.deployment(system)),
                  ("network-policy", monitoring_network_policy(system)),
                  ("service", monitoring_pod.service(system))]
        for role, obj in built:
            created.append(registered_label(register_object(f"{name}-{role}", obj, self._options()), obj))
        self.objects = pulumi.Output.all(*created).apply(list)
        self.service_url = pulumi.Output.from_input(monitoring_service_url(system))
        self.credentials = pulumi.Output.from_input(monitoring_pod.credential_inventory(system))
        self.register_outputs({"objects": self.objects, "service_url": self.service_url,
                               "credentials": self.credentials})

    def _secrets(self, system: SystemConfig, secrets: dict[str, pulumi.Input[str]]) -> list[pulumi.Output[str]]:
        """The credentials Secret (Pulumi secrets, and what is generated) and the tokens derived from its key."""
        name = self._name
        values = {**secrets, **self._generated(system)}
        secret = monitoring_pod.credentials_secret(system, values)
        credentials = register_object(f"{name}-credentials", secret, self._options())
        self._after.append(credentials)
        created = [registered_label(credentials, secret)]
        key = pulumi.Output.secret(values[INGEST_KEY_KEY])
        for namespace in agent_namespaces(system):
            ingest = monitoring_pod.ingest_secret(system, namespace, key)
            created.append(registered_label(register_object(f"{name}-ingest-{namespace}", ingest, self._options()),
                                            ingest))
        if system.monitoring.service.source == "remote_write":
            token = monitoring_pod.remote_write_secret(system, key)
            created.append(registered_label(register_object(f"{name}-remote-write", token, self._options()), token))
        return created

    def _stored_secrets(self, system: SystemConfig) -> list[pulumi.Output[str]]:
        """ExternalSecrets instead: the operator fills the same Secrets from the store; no value passes here."""
        created = []
        for stored in monitoring_pod.stored_secrets(system):
            obj = external_secret(system, stored.namespace, stored.name, stored.remote_keys, stored.template)
            resource = register_object(f"{self._name}-external-secret-{stored.namespace}-{stored.name}", obj,
                                       self._options())
            if stored.name == credentials_secret_name(system):
                self._after.append(resource)
            created.append(registered_label(resource, obj))
        return created

    def _generated(self, system: SystemConfig) -> dict[str, pulumi.Output[str]]:
        """The service credentials to generate (those no Pulumi secret is named for), by Secret key."""
        return {key: pulumi_random.RandomPassword(f"{self._name}-{key}", length=40, special=False,
                                                  opts=pulumi.ResourceOptions(parent=self)).result
                for key in system.monitoring.generated_credentials()}

    def _options(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(self._after))
