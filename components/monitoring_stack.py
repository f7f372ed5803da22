"""MonitoringStack: Prometheus Operator objects, alert routing, dashboards and the monitoring pod.

Registers what alert_rules.py, dashboards.py and monitoring_objects.py build. Credentials
(Slack, e-mail, PagerDuty, the API token) come from Pulumi secret config into one
Kubernetes Secret; every other object only references that Secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from . import monitoring_objects as objects
from .alert_rules import prometheus_rule
from .config import PROJECT, SystemConfig
from .dashboards import dashboard_config_maps
from .namespaces import namespace as namespace_object
from .registration import register_object, registered_label


def read_secrets(system: SystemConfig, config: pulumi.Config | None = None) -> dict[str, pulumi.Output[str]]:
    """Secret values by Secret key, read from the Pulumi config keys the monitoring config names."""
    config = config or pulumi.Config(PROJECT)
    return {secret_key: config.require_secret(config_key)
            for config_key, secret_key in objects.secret_keys(system).items()}


@dataclass(frozen=True)
class MonitoringStackArgs:
    """Inputs of MonitoringStack: the validated config, secret values, and what it must come after."""

    system: SystemConfig
    secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class MonitoringStack(pulumi.ComponentResource):
    """ServiceMonitors, PrometheusRule, AlertmanagerConfig (+ Secret), dashboards, and the monitoring pod."""

    objects: pulumi.Output[list[str]]
    """`kind namespace/name` of every object created."""

    service_url: pulumi.Output[str]
    """In-cluster URL of the monitoring service's HTTP API."""

    credentials: pulumi.CustomResource | None
    """The Secret with the alerting credentials (None when the config names none)."""

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("multi-agent-system:monitoring:MonitoringStack", name, None, opts)
        system = args.system
        monitoring = system.monitoring
        self._name = name
        self._after = list(args.depends_on)
        created: list[pulumi.Output[str]] = []
        self.credentials = None
        if monitoring.create_namespace:
            namespace = register_object(f"{name}-namespace", namespace_object(system, monitoring.namespace),
                                        self._options())
            self._after.append(namespace)
            created.append(registered_label(namespace, namespace_object(system, monitoring.namespace)))
        if args.secrets:
            secret = objects.credentials_secret(system, args.secrets)
            self.credentials = register_object(f"{name}-credentials", secret, self._options())
            self._after.append(self.credentials)
            created.append(registered_label(self.credentials, secret))
        built: list[tuple[str, dict[str, Any]]] = []
        if monitoring.prometheus_operator:
            built += [(f"service-monitor-{obj['metadata']['name']}", obj) for obj in objects.service_monitors(system)]
            built.append(("rules", prometheus_rule(system)))
            if monitoring.receivers:
                built.append(("alertmanager-config", objects.alertmanager_config(system)))
        if monitoring.dashboards.enabled:
            built += [(f"dashboard-{obj['metadata']['name']}", obj) for obj in dashboard_config_maps(system)]
        built += [("service-account", objects.service_account(system)),
                  ("settings", objects.settings_config_map(system)),
                  *((f"{obj['kind'].lower()}-{obj['metadata']['namespace']}", obj)
                    for obj in objects.discovery_rbac(system)),
                  ("deployment", objects.deployment(system)),
                  ("service", objects.service(system))]
        for role, obj in built:
            created.append(registered_label(register_object(f"{name}-{role}", obj, self._options()), obj))
        self.objects = pulumi.Output.all(*created).apply(list)
        self.service_url = pulumi.Output.from_input(
            f"http://{objects.SERVICE_ID}.{monitoring.namespace}.svc.cluster.local:{objects.SERVICE_PORT}")
        self.register_outputs({"objects": self.objects, "service_url": self.service_url})

    def _options(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(self._after))
