"""Monitoring settings of the system (MonitoringStack): scraping, alert thresholds, routing,
dashboards and the monitoring pod.

What agents expose for the rules and dashboards (the seeds' metric names) is docs/metrics.md.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from .types import (Cidr, Cpu, Duration, HttpUrlString, ImageDigest, ImageRepository, ImageTag, Labels, Memory,
                    Namespace, PortName, PortNumber, PromDuration, Severity, StrictModel,
                    prom_duration_seconds)

# The monitoring service as deployed: its name (Deployment, Service, ServiceAccount), its role
# (the `component` label, which agent ServiceMonitors skip), its HTTP port and that port's
# name, and the keys of its credentials in the credentials Secret.
SERVICE_ID = "agent-monitoring"
SERVICE_ROLE = "monitoring"
SERVICE_PORT = 8000
SERVICE_PORT_NAME = "http"
TOKEN_KEY = ADMIN_TOKEN_KEY = "api-token"
READ_TOKEN_KEY = "read-token"
INGEST_KEY_KEY = "ingest-key"
# Credential key in the Secret -> (ServicePodConfig field naming a Pulumi secret for it, service env var).
SERVICE_CREDENTIALS = {
    ADMIN_TOKEN_KEY: ("api_token_secret", "MONITORING_AUTH__ADMIN_TOKEN"),
    READ_TOKEN_KEY: ("read_token_secret", "MONITORING_AUTH__READ_TOKEN"),
    INGEST_KEY_KEY: ("ingest_key_secret", "MONITORING_AUTH__INGEST_KEY"),
}
INGEST_SECRET_SUFFIX = "monitoring-ingest"  # the Secret in each agent namespace with its ingestion token
STATE_CONFIG_MAP = f"{SERVICE_ID}-state"   # where the service keeps what is set through its API
RELAY_AUTHORIZATION_KEY = "trace-relay-authorization"
TRACE_BUDGET_SHARE = 4  # the live traces may hold a quarter of the pod's memory limit (the rest: the collector)


class AlertSetting(StrictModel):
    """One alert (or a warning/critical pair): on/off, thresholds and how long before it fires."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    enabled: bool = Field(True, description="Create this alert.")
    warning: float | None = Field(None, description="Threshold of the warning alert; null for none.")
    critical: float | None = Field(None, description="Threshold of the critical alert; null for none.")
    for_: Duration = Field("5m", alias="for", description="How long the condition must hold before firing.")


def _alert(**fields: Any) -> Any:
    return lambda: AlertSetting(**fields)


class AnomalySetting(StrictModel):
    """Anomaly detection on one metric (reasoning_quality): its 5-minute average against a rolling baseline."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    enabled: bool = Field(True, description="Create the baseline recording rules and the alert.")
    sensitivity: float = Field(0.7, ge=0, le=1, description="0-1 (the seed's 0.7): the alert fires when the "
                                                             "z-score leaves the band 1 + 3 x (1 - sensitivity) "
                                                             "standard deviations (0.7: 1.9; 1: 1; 0: 4).")
    window: PromDuration = Field("1h", description="Rolling baseline window (mean and standard deviation).")
    season: PromDuration | None = Field(None, description="Seasonal baseline: compare with the same time one "
                                                          "season ago (e.g. '1d' or '1w'), the `window` around "
                                                          "it; the rolling baseline applies where that window "
                                                          "holds under 80% of the samples the last one does. "
                                                          "Prometheus must keep season + window/2 locally. "
                                                          "Null: rolling baseline only.")
    for_: Duration = Field("5m", alias="for", description="How long the z-score must stay outside the band.")
    severity: Severity = Field(Severity.WARNING, description="Severity of the anomaly alert.")

    @model_validator(mode="after")
    def _season_longer_than_window(self) -> AnomalySetting:
        if self.season is not None and prom_duration_seconds(self.season) <= prom_duration_seconds(self.window):
            raise ValueError(f"season {self.season!r} must be longer than window {self.window!r}; "
                             f"e.g. season '1d' with window '1h'")
        return self

    @property
    def band(self) -> float:
        """Standard deviations of the baseline an anomaly lies beyond."""
        return round(1 + 3 * (1 - self.sensitivity), 6)


class AlertsConfig(StrictModel):
    """Alert thresholds; the defaults are the seed's values."""

    agent_down: AlertSetting = Field(default_factory=_alert(**{"for": "30s"}),
                                     description="AgentDown: Prometheus cannot scrape the agent and its pod is "
                                                 "not Ready (critical); `for` is the seed's agent-failure "
                                                 "detection time.")
    network_partition: AlertSetting = Field(default_factory=_alert(**{"for": "45s"}),
                                            description="AgentNetworkPartition: the pod is Ready but Prometheus "
                                                        "cannot scrape it (critical); `for` is the seed's "
                                                        "network-partition detection time.")
    high_cpu: AlertSetting = Field(default_factory=_alert(warning=85, **{"for": "5m"}),
                                   description="HighCpuUsage: agent_cpu_usage_percent above the threshold.")
    high_memory: AlertSetting = Field(default_factory=_alert(warning=90, **{"for": "5m"}),
                                      description="HighMemoryUsage: agent_memory_usage_bytes in percent of the "
                                                  "container's memory limit, above the threshold.")
    crash_looping: AlertSetting = Field(default_factory=_alert(**{"for": "15m"}),
                                        description="AgentCrashLooping: an agent container in CrashLoopBackOff.")
    replicas_mismatch: AlertSetting = Field(default_factory=_alert(**{"for": "15m"}),
                                            description="AgentReplicasMismatch: fewer available replicas than desired.")
    hpa_at_max: AlertSetting = Field(default_factory=_alert(**{"for": "15m"}),
                                     description="AgentHpaAtMaxReplicas: the autoscaler can't scale further.")
    cluster_capacity: AlertSetting = Field(default_factory=_alert(critical=0.8, **{"for": "60s"}),
                                           description="AgentClusterCapacityLow: share of an agent namespace's "
                                                       "desired replicas available, alerting below (the seed keeps "
                                                       "80%; `for` is its cluster-failure detection time).")
    pdb_unhealthy: AlertSetting = Field(default_factory=_alert(**{"for": "15m"}),
                                        description="AgentPdbNotEnoughHealthyPods: the PDB blocks evictions.")
    message_latency_p95: AlertSetting = Field(default_factory=_alert(warning=1000, critical=5000, **{"for": "5m"}),
                                              description="p95 of message_delivery_latency, milliseconds "
                                                          "(system_performance).")
    coordination_time_p95: AlertSetting = Field(default_factory=_alert(warning=5.0, critical=10.0, **{"for": "5m"}),
                                                description="p95 of agent_coordination_efficiency (coordination "
                                                            "time), seconds (coordination_health).")
    consensus_success_rate: AlertSetting = Field(default_factory=_alert(warning=0.85, critical=0.7, **{"for": "20s"}),
                                                 description="consensus_success_rate, 0-1, alerting below "
                                                             "(coordination_health); `for` is the seed's "
                                                             "consensus-failure detection time.")
    task_error_rate: AlertSetting = Field(default_factory=_alert(warning=0.05, critical=0.2, **{"for": "5m"}),
                                          description="Share of agent_tasks_total with status error, failure or "
                                                      "failed.")
    utilisation: AlertSetting = Field(default_factory=_alert(warning=0.8, critical=0.95, **{"for": "10m"}),
                                      description="agent_utilization, 0-1 (system_performance).")
    health_score_low: AlertSetting = Field(default_factory=_alert(warning=50, **{"for": "5m"}),
                                           description="Collector's agent health score below the threshold.")
    scrape_failures: AlertSetting = Field(default_factory=_alert(warning=0.1, **{"for": "10m"}),
                                          description="Share of the collector's scrapes that fail.")
    @model_validator(mode="after")
    def _latency_in_milliseconds(self) -> AlertsConfig:
        for level in ("warning", "critical"):
            threshold = getattr(self.message_latency_p95, level)
            if threshold is not None and threshold < 10:
                raise ValueError(f"message_latency_p95.{level} is {threshold:g}, read as milliseconds (the seed's "
                                 f"unit: warning 1000, critical 5000); write {threshold * 1000:g} for "
                                 f"{threshold:g} s")
        return self

    reasoning_chain_anomaly: AnomalySetting = Field(
        default_factory=AnomalySetting, description="AgentReasoningAnomaly: the mean of reasoning_chain_length "
                                                    "leaves its baseline (reasoning_quality).")
    planning_success_anomaly: AnomalySetting = Field(
        default_factory=AnomalySetting, description="AgentPlanningAnomaly: planning_success_rate leaves its "
                                                    "baseline (reasoning_quality).")


class SlackReceiver(StrictModel):
    """Slack incoming webhook; the URL is a Pulumi secret."""

    channel: str = Field(description="Channel, e.g. '#agents-alerts'.")
    webhook_url_secret: str = Field(description="Pulumi config key holding the webhook URL as a secret "
                                                "(`pulumi config set --secret <key> https://hooks.slack.com/...`).")


class EmailReceiver(StrictModel):
    """E-mail through an SMTP relay; the password is a Pulumi secret."""

    to: str = Field(description="Recipient address.")
    sender: str = Field(description="From address.")
    smarthost: str = Field(description="SMTP relay, host:port.")
    username: str = Field("", description="SMTP user.")
    password_secret: str | None = Field(None, description="Pulumi config key holding the SMTP password as a secret.")


class PagerDutyReceiver(StrictModel):
    """PagerDuty Events API v2; the routing key is a Pulumi secret."""

    routing_key_secret: str = Field(description="Pulumi config key holding the routing (integration) key as a secret.")


class AlertCategory(str, Enum):
    """The seed's alert policy categories (a `category` label on their alerts)."""
    COORDINATION_HEALTH = "coordination_health"
    SYSTEM_PERFORMANCE = "system_performance"
    REASONING_QUALITY = "reasoning_quality"


class Channel(str, Enum):
    """A notification channel of a receiver."""
    SLACK = "slack"
    EMAIL = "email"
    PAGERDUTY = "pagerduty"


class Escalation(StrictModel):
    """Who is notified of an alert, by time of day, and who next when it stays unresolved (the seed's policy):
    business hours go to a primary, then a secondary; after hours to on-call, then a backup."""

    business_days: str = Field("monday:friday", pattern=r"^[a-z]+day(:[a-z]+day)?$",
                               description="Weekdays of business hours (a day or a range, e.g. monday:friday).")
    business_start: str = Field("09:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                description="Start of business hours, 24h, in Alertmanager's time zone (UTC).")
    business_end: str = Field("17:00", pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
                              description="End of business hours, 24h, in Alertmanager's time zone (UTC).")
    business_primary: str = Field(description="Receiver notified in business hours (the seed's team lead).")
    business_secondary: str = Field(description="Receiver notified next in business hours (a senior engineer).")
    after_hours_primary: str = Field(description="Receiver notified after hours (the on-call engineer).")
    after_hours_secondary: str = Field(description="Receiver notified next after hours (the backup on-call).")
    critical_after: Duration = Field("15m", description="A critical alert unresolved this long escalates.")
    warning_after: Duration = Field("60m", description="A warning unresolved this long escalates.")

    def receiver_fields(self) -> list[str]:
        return ["business_primary", "business_secondary", "after_hours_primary", "after_hours_secondary"]


class Receiver(StrictModel):
    """Where alerts of some severities go."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="Receiver name.")
    severities: list[Severity] = Field(default_factory=lambda: [Severity.EMERGENCY, Severity.CRITICAL,
                                                                Severity.WARNING],
                                       min_length=1, description="Severities routed here (info, warning, critical, "
                                                                 "emergency).")
    slack: SlackReceiver | None = Field(None, description="Slack webhook.")
    email: EmailReceiver | None = Field(None, description="E-mail.")
    pagerduty: PagerDutyReceiver | None = Field(None, description="PagerDuty.")


class ScrapeConfig(StrictModel):
    """How Prometheus scrapes the agents (ServiceMonitor)."""

    port: PortName = Field("metrics", description="Service port name serving metrics.")
    path: str = Field("/metrics", pattern=r"^/", description="HTTP path.")
    interval: Duration = Field("30s", description="Scrape interval.")
    scrape_timeout: Duration = Field("10s", description="Scrape timeout.")


class DashboardsConfig(StrictModel):
    """Grafana dashboards as ConfigMaps for the Grafana sidecar."""

    enabled: bool = Field(True, description="Create the dashboard ConfigMaps.")
    label: str = Field("grafana_dashboard", description="Label the Grafana sidecar watches.")
    label_value: str = Field("1", description="Value of that label.")
    folder: str = Field("Multi-agent system", description="Grafana folder (annotation `grafana_folder`).")


class TraceRelayConfig(StrictModel):
    """Forwarding of the agents' OTLP exports from the monitoring pod to a trace store."""

    endpoint: HttpUrlString = Field(description="OTLP/HTTP base URL of the store or collector, e.g. "
                                                "http://otel-collector.observability:4318 (/v1/<signal> is added).")
    authorization_secret: str | None = Field(None, description="Pulumi config key holding the Authorization "
                                                               "header value (e.g. 'Bearer ...') as a secret.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (not secret).")
    signals: list[Literal["traces", "metrics", "logs"]] = Field(
        default_factory=lambda: ["traces", "metrics", "logs"], min_length=1, description="Signals to forward.")


class ServicePodConfig(StrictModel):
    """The monitoring service's pod."""

    image: ImageRepository = Field("ghcr.io/example/agent-monitoring",
                                   description="Image built from this repo's Dockerfile.")
    tag: ImageTag = Field("0.1.0", description="Image tag; in production the image is pinned by `digest`.")
    digest: ImageDigest | None = Field(None, description="Pin the image by digest ('sha256:...'); wins over `tag`; "
                                                         "required in production.")
    replicas: int = Field(1, ge=1, le=1, description="One collector (its state is in memory).")
    cpu_request: Cpu = Field("250m", description="CPU request.")
    memory_request: Memory = Field("256Mi", description="Memory request.")
    cpu_limit: Cpu = Field("1", description="CPU limit.")
    memory_limit: Memory = Field("1Gi", description="Memory limit.")
    collection_interval: float = Field(15.0, gt=0, le=3600, description="Seconds between scrapes of one agent.")
    source: Literal["scrape", "remote_write"] = Field("scrape", description="scrape: the service scrapes the agents "
                                                                        "it discovers; remote_write: Prometheus "
                                                                        "scrapes them and remote-writes to the "
                                                                        "service (which scrapes nothing; the "
                                                                        "Prometheus token is in the Secret "
                                                                        "<system>-monitoring-remote-write).")
    alertmanager_url: HttpUrlString | None = Field("http://alertmanager-operated.monitoring.svc:9093",
                                         description="Alertmanager the collector sends its alerts to; null for none.")
    api_token_secret: str | None = Field(None, description="Pulumi config key holding the admin token (changes "
                                                           "through the API) as a secret; null: generated at "
                                                           "`pulumi up` (RandomPassword) and kept in the "
                                                           "credentials Secret.")
    read_token_secret: str | None = Field(None, description="Pulumi config key holding the read token (the API's "
                                                            "reads) as a secret; null: generated.")
    ingest_key_secret: str | None = Field(None, description="Pulumi config key holding the key the agents' "
                                                            "ingestion tokens derive from, as a secret; null: "
                                                            "generated.")
    api_client_namespaces: list[Namespace] = Field(
        default_factory=list, description="Namespaces whose pods may call the API (e.g. an ingress controller's); "
                                          "operators use `kubectl port-forward`.")
    kubernetes_api_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"], min_length=1,
        description="Addresses of the Kubernetes API server the pod may reach (discovery, its state ConfigMap); "
                    "narrow it to your control plane's, e.g. 10.0.0.1/32.")
    kubernetes_api_ports: list[PortNumber] = Field(default_factory=lambda: [443, 6443], min_length=1,
                                            description="Ports of the Kubernetes API server.")
    trace_relay: TraceRelayConfig | None = Field(None, description="Forward every OTLP export the pod accepts to "
                                                                   "a trace store; null to keep traces only for "
                                                                   "the pod's analysis window.")


class SecretStoreRef(StrictModel):
    """An External Secrets Operator store the credentials are read from."""

    name: str = Field(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                      description="Name of the SecretStore or ClusterSecretStore.")
    kind: Literal["SecretStore", "ClusterSecretStore"] = Field(
        "SecretStore", description="SecretStore (namespaced: one of that name in the monitoring namespace and in "
                                   "every agent namespace) or ClusterSecretStore (one for the cluster).")


class CredentialsConfig(StrictModel):
    """Where the monitoring credentials come from. Without a secret_store, `pulumi up` generates the service's
    (RandomPassword) and writes them, the Pulumi secrets and the agents' ingestion tokens into Secrets; the
    offline render writes none of these Secrets and lists what to create (stack output monitoring_credentials).
    With a secret_store, the program writes ExternalSecrets reading every value from that store (for GitOps)."""

    secret_store: SecretStoreRef | None = Field(None, description="External Secrets Operator store holding the "
                                                                  "credentials; null: Secrets written by pulumi up.")
    remote_key_prefix: str | None = Field(None, max_length=200, pattern=r"^[A-Za-z0-9][-A-Za-z0-9_./]*$",
                                          description="Prefix of the keys in the store (then 'credentials-<key>', "
                                                      "'ingest-ns-<namespace>', 'ingest-role-<role>'); null: "
                                                      "'<system name>-monitoring-'.")
    refresh_interval: Duration = Field("1h", description="How often the External Secrets Operator re-reads the "
                                                         "store.")


class MonitoringConfig(StrictModel):
    """Observability with the Prometheus Operator, and the monitoring pod (MonitoringStack)."""

    enabled: bool = Field(True, description="Create the monitoring objects and pod.")
    namespace: Namespace = Field("monitoring", description="Namespace of the monitoring pod and the "
                                                           "Prometheus Operator objects.")
    create_namespace: bool = Field(False, description="Create the namespace (kube-prometheus-stack usually has).")
    prometheus_operator: bool = Field(True, description="Create ServiceMonitors, PrometheusRule and "
                                                        "AlertmanagerConfig (needs the Prometheus Operator's CRDs); "
                                                        "false still deploys the monitoring pod and dashboards.")
    monitor_labels: Labels = Field(default_factory=dict, description="Extra labels on ServiceMonitors, "
                                                                     "PrometheusRules and AlertmanagerConfigs, "
                                                                     "e.g. {release: kube-prometheus-stack}.")
    runbook_base_url: str = Field("https://github.com/example/multi-agent-system/blob/main/docs/runbooks.md",
                                  description="Base of every alert's runbook_url (an anchor per alert is added).")
    scrape: ScrapeConfig = Field(default_factory=ScrapeConfig, description="Agent scraping.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Alert thresholds.")
    receivers: list[Receiver] = Field(default_factory=list, description="Alertmanager receivers by severity.")
    escalation: Escalation | None = Field(None, description="Notification by time of day, and escalation of "
                                                            "unresolved alerts; null for routing by severity only.")
    category_channels: dict[AlertCategory, list[Channel]] = Field(
        default_factory=lambda: {AlertCategory.COORDINATION_HEALTH: [Channel.SLACK, Channel.EMAIL, Channel.PAGERDUTY],
                                 AlertCategory.SYSTEM_PERFORMANCE: [Channel.SLACK, Channel.EMAIL],
                                 AlertCategory.REASONING_QUALITY: [Channel.SLACK]},
        description="Which channels of a receiver an alert of each policy category reaches (the seed's by "
                    "default); alerts without a category reach all of them.")
    dashboards: DashboardsConfig = Field(default_factory=DashboardsConfig, description="Grafana dashboards.")
    service: ServicePodConfig = Field(default_factory=ServicePodConfig, description="The monitoring pod.")
    credentials: CredentialsConfig = Field(default_factory=CredentialsConfig, description="Where the monitoring "
                                                                                          "credentials come from.")

    @model_validator(mode="after")
    def _one_source_per_credential(self) -> MonitoringConfig:
        if self.credentials.secret_store is not None:
            for field, _ in SERVICE_CREDENTIALS.values():
                if getattr(self.service, field):
                    raise ValueError(f"service.{field} names a Pulumi secret, but credentials.secret_store reads "
                                     f"every credential from the store; remove one of them")
        return self

    def secret_references(self) -> list[tuple[str, str, str]]:
        """(field path, Pulumi secret config key, key in the credentials Secret) of every credential named here."""
        refs: list[tuple[str, str, str]] = []
        for index, receiver in enumerate(self.receivers):
            where = f"monitoring.receivers[{index}]"
            if receiver.slack is not None:
                refs.append((f"{where}.slack.webhook_url_secret", receiver.slack.webhook_url_secret,
                             f"{receiver.name}-slack-webhook-url"))
            if receiver.email is not None and receiver.email.password_secret:
                refs.append((f"{where}.email.password_secret", receiver.email.password_secret,
                             f"{receiver.name}-smtp-password"))
            if receiver.pagerduty is not None:
                refs.append((f"{where}.pagerduty.routing_key_secret", receiver.pagerduty.routing_key_secret,
                             f"{receiver.name}-pagerduty-routing-key"))
        for secret_key, (field, _) in SERVICE_CREDENTIALS.items():
            config_key = getattr(self.service, field)
            if config_key:
                refs.append((f"monitoring.service.{field}", config_key, secret_key))
        relay = self.service.trace_relay
        if relay is not None and relay.authorization_secret:
            refs.append(("monitoring.service.trace_relay.authorization_secret", relay.authorization_secret,
                         RELAY_AUTHORIZATION_KEY))
        return refs

    def generated_credentials(self) -> list[str]:
        """Keys in the credentials Secret of the service credentials no Pulumi secret is named for (none when a
        secret store holds them all)."""
        if self.credentials.secret_store is not None:
            return []
        return [secret_key for secret_key, (field, _) in SERVICE_CREDENTIALS.items()
                if not getattr(self.service, field)]

    def credential_keys(self) -> list[str]:
        """Every key of the credentials Secret: the service's, then those the config names."""
        return list(dict.fromkeys([*SERVICE_CREDENTIALS, *(key for _, _, key in self.secret_references())]))

    def secret_keys(self) -> dict[str, str]:
        """Pulumi secret config key -> key in the credentials Secret (one entry per config key)."""
        return {config_key: secret_key for _, config_key, secret_key in self.secret_references()}
